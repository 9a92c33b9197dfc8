// Controller: the seam where policies act on the job while it runs. Each monitor tick it takes
// one snapshot of the registry's signals (cluster_view.h), lets every policy evaluate it, and
// queues the actions they return for their nodes; the actions travel to the agents in their next
// heartbeat replies (restart a worker, change a node's worker count, ...).
//
// What keeps the job correct is not a policy and stays in MasterCore::MonitorTick: lease expiry,
// declaring silent nodes dead, finalizing the job, giving up when no agent is left. Policies only
// steer (straggler handling, batch sizes, scaling); a policy that returns nothing changes nothing.
// No policy is registered by default.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "baton/v1/baton.pb.h"
#include "master/cluster_view.h"
#include "master/registry.h"

namespace baton::master {

// An action for the agent of one node.
struct PolicyAction {
  std::string node_id;
  v1::Action action;
};

class Policy {
 public:
  virtual ~Policy() = default;
  // Names the policy in the master's log lines about its actions.
  virtual std::string_view name() const = 0;
  // Called on the monitor thread, once per tick while the job runs, with a fresh snapshot (times
  // on the master's run clock: view.now_ms). Returns the actions to take now, usually none. Must
  // not block: the monitor also expires leases and detects dead nodes. A policy that needs history
  // (speeds over minutes, cool-downs after acting) keeps it itself, keyed by worker or node id.
  virtual std::vector<PolicyAction> Evaluate(const ClusterView& view) = 0;
};

class Controller {
 public:
  explicit Controller(Registry& registry) : registry_(registry) {}

  // Policies run in the order added. Add them before the monitor starts ticking.
  void AddPolicy(std::unique_ptr<Policy> policy);
  size_t policies() const { return policies_.size(); }

  // One round: snapshot at `now_ms` (run clock) with the job's `progress` and job-wide
  // `workers_per_node`, evaluate every policy, queue their actions.
  // An action for a node that is unknown or no longer alive is dropped (logged): it was decided
  // on a node that has since died, and must not reach the agent that replaces it. An action
  // without a kind is dropped as a policy bug. Returns the number of actions queued.
  size_t Tick(int64_t now_ms, JobProgress progress = {}, int32_t workers_per_node = 0);

 private:
  Registry& registry_;
  std::vector<std::unique_ptr<Policy>> policies_;
};

}  // namespace baton::master
