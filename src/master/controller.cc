#include "master/controller.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace baton::master {

void Controller::AddPolicy(std::unique_ptr<Policy> policy) {
  policies_.push_back(std::move(policy));
}

size_t Controller::Tick(int64_t now_ms, JobProgress progress, int32_t workers_per_node) {
  // Without policies there is nothing to decide: skip the snapshot, which walks every worker.
  if (policies_.empty()) return 0;
  ClusterView view = registry_.Snapshot(now_ms);
  view.progress = progress;
  view.workers_per_node = workers_per_node;
  size_t queued = 0;
  for (const auto& policy : policies_) {
    for (const PolicyAction& a : policy->Evaluate(view)) {
      const auto kind = v1::Action::Kind_Name(a.action.kind());
      if (a.action.kind() == v1::Action::KIND_UNSPECIFIED) {
        spdlog::error("policy {}: dropped an action without a kind for node {}", policy->name(),
                      a.node_id);
        continue;
      }
      if (!registry_.QueueActionIfAlive(a.node_id, a.action)) {
        spdlog::warn("policy {}: dropped {} for node {}: the node is unknown or dead",
                     policy->name(), kind, a.node_id);
        continue;
      }
      spdlog::info("policy {}: {} (local rank {}, worker count {}) for node {}: {}", policy->name(),
                   kind, a.action.local_rank(), a.action.worker_count(), a.node_id,
                   a.action.reason());
      ++queued;
    }
  }
  return queued;
}

}  // namespace baton::master
