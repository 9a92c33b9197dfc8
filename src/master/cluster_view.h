// ClusterView: a consistent snapshot of the registry's per-node and per-worker signals, taken on
// the master's run clock (run_clock.h). It is what the status RPC reports and what controller
// policies (controller.h) decide on; it owns its data, so a policy may keep it past the tick.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace baton::master {

struct NodeSignals {
  std::string node_id;
  int32_t rank = 0;
  // False once the node was silent for timeouts.node_dead_ms (its leases are revoked by then).
  bool alive = true;
  int64_t last_heartbeat_ms = 0;  // run-clock time of the last heartbeat
  int32_t workers_running = 0;    // as of that heartbeat
  int32_t restarts = 0;           // worker restarts the agent reported, summed over its workers
  // Workers it is planned to run when set for this node alone (Registry::NodeWorkers): 0 for a
  // spare or a node emptied by a policy; -1: the job-wide count.
  int32_t planned_workers = -1;
};

struct WorkerSignals {
  std::string worker_id;  // "<node_id>/<local_rank>"
  std::string node_id;
  // Records per second over the last timeouts.speed_window_ms of progress reports; 0 with fewer
  // than two reports in the window or when the last report is older than the window.
  double records_per_s = 0;
  // The larger of the reported count and the committed shards' records (a worker may stop right
  // after its last commit, before its next progress report).
  uint64_t records_total = 0;
  uint64_t shards_committed = 0;
  double cpu_seconds = 0;
  int64_t rss_bytes = 0;
  int64_t last_seen_ms = -1;  // run-clock time of the last progress report; -1: none yet
  std::map<std::string, uint64_t> counters;  // the worker's own counters, as last reported
  // Its current values, as last reported: a training rank's step, loss, compute and communication
  // milliseconds per step (the signals a straggler policy reads).
  std::map<std::string, double> gauges;
  // What policies computed about it (PolicyHost::SetWorkerNote), e.g. straggler.ratio; the status
  // shows them among its gauges.
  std::map<std::string, double> notes;
};

// The job's data, from the master's shard service: over every epoch.
struct JobProgress {
  uint64_t records_total = 0;
  uint64_t records_done = 0;
};

struct ClusterView {
  int64_t now_ms = 0;  // run-clock time the snapshot was taken at
  JobProgress progress;
  // Workers a node runs unless a count was set for it alone (NodeSignals::planned_workers -1):
  // the spec's worker.per_node, or what `baton scale` set since.
  int32_t workers_per_node = 0;
  std::vector<NodeSignals> nodes;      // by node id
  std::vector<WorkerSignals> workers;  // by worker id
};

}  // namespace baton::master
