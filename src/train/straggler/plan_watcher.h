// PlanWatcher: rank 0's view of the batch plan the master's straggler policy publishes (the job
// KV key kBatchPlanKey, batch_plan.h), polled on a thread of its own so that a slow or restarting
// master never holds up a training step. The trainer reads latest() once a step and, when it names
// the running generation and a version the ranks do not run yet, hands it to them all.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "train/straggler/batch_plan.h"

namespace baton::train {

class PlanWatcher {
 public:
  // Reads the plan's text: one attempt with a short deadline (sdk::Rendezvous::ReadJobValue),
  // nullopt while none is published.
  using Read = std::function<Result<std::optional<std::string>>()>;
  // Calls `read` every `period` (default 100 ms: a plan reaches the ranks within a tenth of a
  // second of its decision).
  explicit PlanWatcher(Read read,
                       std::chrono::milliseconds period = std::chrono::milliseconds(100));
  ~PlanWatcher();
  PlanWatcher(const PlanWatcher&) = delete;
  PlanWatcher& operator=(const PlanWatcher&) = delete;

  // The newest plan read (version 0: none published yet).
  BatchPlan latest() const;

 private:
  void Loop();

  Read read_;
  std::chrono::milliseconds period_;
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  BatchPlan latest_;
  std::thread thread_;
};

}  // namespace baton::train
