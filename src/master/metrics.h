// Prometheus text metrics of the master (prometheus-cpp), served on spec.master.metrics_port.
#pragma once

#include <memory>
#include <string>

#include "baton/v1/baton.pb.h"
#include "common/status.h"

namespace baton::master {

class MetricsExporter {
 public:
  virtual ~MetricsExporter() = default;
  // Serves http://host:port/metrics. Port 0: metrics are off, and the result is null.
  static Result<std::unique_ptr<MetricsExporter>> Start(const std::string& host, int port);
  // Brings every metric up to date with a status snapshot (called about once a second).
  virtual void Update(const v1::JobStatus& status) = 0;
};

}  // namespace baton::master
