// Node registry and monitor state: which agents are alive, what their workers are doing, and how
// fast each worker goes. The monitor (MasterCore::MonitorTick) reads it to revoke the leases of
// dead nodes; the controller (controller.h) reads its snapshot (cluster_view.h) and queues actions
// here that travel back in heartbeat replies.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "baton/v1/baton.pb.h"
#include "common/status.h"
#include "master/cluster_view.h"

namespace baton::master {

// Per-node worker counts as the state store keeps them: "node=count,node=count" (node ids hold
// neither ',' nor '=': request_limits.h). Decoding skips a malformed entry: that node then
// follows the job-wide count, as it did before any count was set for it.
std::string EncodeNodeWorkers(const std::map<std::string, int32_t>& counts);
std::map<std::string, int32_t> DecodeNodeWorkers(const std::string& text);

class Registry {
 public:
  explicit Registry(int64_t speed_window_ms) : speed_window_ms_(speed_window_ms) {}

  // Ranks handed out by earlier lives of this master (from the state store): a node keeps its rank
  // for the life of the job, across master restarts. Call before serving.
  void RestoreRanks(const std::map<std::string, int32_t>& ranks);
  // Worker counts set for single nodes by earlier lives of this master (NodeWorkers). Call before
  // serving.
  void RestoreNodeWorkers(const std::map<std::string, int32_t>& counts);

  struct Registration {
    int32_t rank = 0;
    // First registration of this node id in the job: the caller must persist the rank before it
    // answers.
    bool new_rank = false;
    // The node was registered before by another agent process: that agent died, and with it
    // (PR_SET_PDEATHSIG) its workers, so their leases can be revoked at once.
    bool agent_replaced = false;
  };
  // Registers (or re-registers) a node; its rank is stable for the life of the job. Fails once
  // `max_nodes` distinct nodes have registered. `spare`, read at a node's first registration
  // only: a standby node, planned to run no worker (NodeWorkers 0) until an action gives it some.
  Result<Registration> RegisterNode(const std::string& node_id, int32_t agent_pid, int64_t now_ms,
                                    size_t max_nodes, bool spare = false);
  // Whether `node_id` has ever registered in this job (in this life of the master or an earlier
  // one): only such nodes' workers are tracked.
  bool KnownNode(const std::string& node_id) const;
  // The node's rank if it is registered with this master and alive.
  std::optional<int32_t> LiveNodeRank(const std::string& node_id) const;
  // Distinct nodes ever registered in this job.
  size_t KnownNodes() const;
  // Of those, the nodes planned to run workers (not spares nor emptied nodes).
  size_t KnownWorkingNodes() const;

  // Per-node worker counts. A node follows the job-wide count (the spec's workers_per_node, or
  // what `baton scale` set) unless a count was set for it: 0 for a spare, or the count of the
  // last KIND_SET_WORKER_COUNT queued for it alone (a policy moving workers between nodes). The
  // rendezvous plans each node's workers from this, so what the agents are told to run and what
  // the generation waits for never disagree.
  std::optional<int32_t> NodeWorkers(const std::string& node_id) const;
  // A dead node's workers move to a standby: the first live node (by rank) whose agent
  // registered as a spare and that is planned to run none gets the dead node's count
  // (`job_wide` when that followed the job-wide count) and its KIND_SET_WORKER_COUNT; the dead
  // node's count becomes 0, so that back it idles instead of growing the job. Returns the
  // spare's id; nullopt when the dead node ran no worker or no spare is left.
  std::optional<std::string> ReplaceWithSpare(const std::string& dead_node, int32_t job_wide,
                                              const std::string& reason);
  // Every explicit count, when one changed since the last call (for the state store); else
  // nullopt.
  std::optional<std::map<std::string, int32_t>> TakeChangedNodeWorkers();
  // Records a heartbeat. Returns false if the node is unknown (the master restarted) so the
  // agent re-registers. Moves queued actions into `actions`.
  bool Heartbeat(const v1::HeartbeatRequest& req, int64_t now_ms, std::vector<v1::Action>* actions);
  void RecordExit(const v1::ReportExitRequest& req);
  void RecordProgress(const v1::ReportProgressRequest& req, int64_t now_ms);
  // A committed shard of `records` records: counts toward the worker's totals even if its last
  // progress report never arrived (a worker stopped right after its last commit).
  void RecordCommit(const std::string& worker_id, uint64_t records);

  // Nodes alive until now that have been silent for `dead_after_ms`; marks them dead.
  std::vector<std::string> CollectDeadNodes(int64_t now_ms, int64_t dead_after_ms);

  // Queues an action for one node, or for every live node. A KIND_SET_WORKER_COUNT for one node
  // sets its count (NodeWorkers); for every node (`baton scale`) it reaches the nodes that run
  // workers, which follow the job-wide count from then on, and not the nodes planned to run none
  // (spares stay spare, a node emptied off a slow host stays empty).
  void QueueAction(const std::string& node_id, const v1::Action& action);
  // Queues an action for `node_id` only if it is registered and alive; returns whether it did. An
  // action decided for a node that has since died would otherwise reach its next agent process.
  bool QueueActionIfAlive(const std::string& node_id, const v1::Action& action);
  int QueueActionForAll(const v1::Action& action);
  // Whether every live node has been handed a STOP (so the master may exit).
  bool AllLiveNodesStopped() const;
  int LiveNodes() const;
  struct LiveNode {
    std::string node_id;
    int32_t rank = 0;
    std::optional<int32_t> workers;  // NodeWorkers: nullopt follows the job-wide count
  };
  // Every live node, by node id.
  std::vector<LiveNode> LiveNodePlans() const;

  // Every node's and worker's signals as of `now_ms` (run clock), taken under one lock.
  ClusterView Snapshot(int64_t now_ms) const;
  // A value the master computed about a worker (policy_registry.h: PolicyHost::SetWorkerNote).
  void SetNote(const std::string& worker_id, const std::string& name, double value);
  // The snapshot's nodes and workers, as the status RPC reports them.
  void FillStatus(v1::JobStatus* status, int64_t now_ms) const;
  uint64_t total_restarts() const;

 private:
  struct Worker {
    std::string node_id;
    std::deque<std::pair<int64_t, uint64_t>> samples;  // (time, cumulative records) in the window
    uint64_t records_total = 0;
    uint64_t shards_committed = 0;
    uint64_t records_committed = 0;
    double cpu_seconds = 0;
    int64_t rss_bytes = 0;
    int64_t last_seen_ms = 0;
    std::map<std::string, uint64_t> counters;  // as last reported
    std::map<std::string, double> gauges;      // as last reported
    std::map<std::string, double> notes;       // set by policies
  };
  struct Node {
    int32_t rank = 0;
    int32_t agent_pid = 0;
    bool alive = true;
    bool stop_sent = false;
    int64_t last_heartbeat_ms = 0;
    int32_t workers_running = 0;
    int32_t restarts = 0;
    bool standby = false;  // its agent registered as a spare (`baton agent --spare`)
    std::vector<v1::Action> pending;
  };
  double SpeedLocked(const Worker& w) const;
  void QueueLocked(const std::string& node_id, Node& node, const v1::Action& action);

  int64_t speed_window_ms_;
  mutable std::mutex mu_;
  std::map<std::string, Node> nodes_;
  std::map<std::string, Worker> workers_;
  std::map<std::string, int32_t> ranks_;         // every node id ever registered in the job
  std::map<std::string, int32_t> node_workers_;  // explicit per-node counts (NodeWorkers)
  bool node_workers_changed_ = false;
  int32_t next_rank_ = 0;
};

}  // namespace baton::master
