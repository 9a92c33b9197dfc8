#include "master/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <map>

namespace baton::master {
namespace {

class PrometheusExporter final : public MetricsExporter {
 public:
  PrometheusExporter(std::unique_ptr<prometheus::Exposer> exposer)
      : exposer_(std::move(exposer)), registry_(std::make_shared<prometheus::Registry>()) {
    auto& shards = prometheus::BuildGauge()
                       .Name("baton_shards")
                       .Help("Shards of the job by state")
                       .Register(*registry_);
    for (const char* s : {"todo", "doing", "done", "dead"})
      shards_[s] = &shards.Add({{"state", s}});
    auto& events = prometheus::BuildCounter()
                       .Name("baton_shard_events_total")
                       .Help("Lease life-cycle events")
                       .Register(*registry_);
    for (const char* e : {"lease_granted", "lease_expired", "commit_fenced", "requeue"}) {
      events_[e] = &events.Add({{"event", e}});
    }
    restarts_ = &prometheus::BuildCounter()
                     .Name("baton_worker_restarts_total")
                     .Help("Worker processes restarted by agents")
                     .Register(*registry_)
                     .Add({});
    records_ = &prometheus::BuildGauge()
                    .Name("baton_records_done")
                    .Help("Records in committed shards")
                    .Register(*registry_)
                    .Add({});
    worker_speed_ = &prometheus::BuildGauge()
                         .Name("baton_worker_records_per_second")
                         .Help("Per-worker records/s over the speed window")
                         .Register(*registry_);
    worker_gauges_ = &prometheus::BuildGauge()
                          .Name("baton_worker_gauge")
                          .Help("A worker's own current values (sdk Worker::SetGauge), by name")
                          .Register(*registry_);
    exposer_->RegisterCollectable(registry_);
  }

  void Update(const v1::JobStatus& st) override {
    shards_["todo"]->Set(static_cast<double>(st.shards_todo()));
    shards_["doing"]->Set(static_cast<double>(st.shards_doing()));
    shards_["done"]->Set(static_cast<double>(st.shards_done()));
    shards_["dead"]->Set(static_cast<double>(st.shards_dead()));
    Advance(events_["lease_granted"], st.leases_granted());
    Advance(events_["lease_expired"], st.leases_expired());
    Advance(events_["commit_fenced"], st.commits_fenced());
    Advance(events_["requeue"], st.requeues());
    Advance(restarts_, st.worker_restarts());
    records_->Set(static_cast<double>(st.records_done()));
    for (const auto& w : st.workers()) {
      worker_speed_->Add({{"worker", w.worker_id()}}).Set(w.records_per_s());
      for (const auto& [name, v] : w.gauges()) {
        worker_gauges_->Add({{"worker", w.worker_id()}, {"name", name}}).Set(v);
      }
    }
  }

 private:
  // Counters only go up; the snapshot carries totals, so add the difference.
  static void Advance(prometheus::Counter* c, uint64_t total) {
    double delta = static_cast<double>(total) - c->Value();
    if (delta > 0) c->Increment(delta);
  }

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::map<std::string, prometheus::Gauge*> shards_;
  std::map<std::string, prometheus::Counter*> events_;
  prometheus::Counter* restarts_;
  prometheus::Gauge* records_;
  prometheus::Family<prometheus::Gauge>* worker_speed_;
  prometheus::Family<prometheus::Gauge>* worker_gauges_;
};

}  // namespace

Result<std::unique_ptr<MetricsExporter>> MetricsExporter::Start(const std::string& host, int port) {
  if (port == 0) return std::unique_ptr<MetricsExporter>();
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(host + ":" + std::to_string(port));
    return std::unique_ptr<MetricsExporter>(new PrometheusExporter(std::move(exposer)));
  } catch (const std::exception& e) {
    return Status::Unavailable("cannot serve metrics on " + host + ":" + std::to_string(port) +
                               ": " + e.what());
  }
}

}  // namespace baton::master
