// The node agent: one per node, between the master and the node's worker processes.
//
// It registers with the master, starts the workers the master's WorkerLaunch describes (through a
// Supervisor), heartbeats their state, runs the actions that come back in heartbeat replies and
// reports every worker exit. The master never calls the agent; everything travels on the agent's
// calls. See docs/agent.md.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "common/backoff.h"
#include "common/defaults.h"
#include "common/grpc_util.h"
#include "common/status.h"

namespace baton::agent {

inline constexpr std::chrono::milliseconds kDefaultMasterUnreachable{
    defaults::kMasterUnreachableMs};

struct AgentOptions {
  std::string master_address;  // host:port
  std::string token;           // job secret, sent with every call
  std::string node_id;         // unique per node within the job
  // A standby node: registers and runs no worker until the master's controller gives it some
  // (RegisterNodeRequest.spare). Default false.
  bool spare = false;
  // Give up (stop the workers, return UNAVAILABLE) once the master has not answered any call for
  // this long. Also handed to workers as BATON_MASTER_UNREACHABLE_MS. Unset: the master's value
  // (RegisterNodeReply.master_unreachable_ms, the spec's timeouts.master_unreachable_ms) from the
  // first registration on, kDefaultMasterUnreachable until then.
  std::optional<std::chrono::milliseconds> master_unreachable;
  // Optional: a file holding the master address, re-read after a failed call so the agent
  // follows a master restarted elsewhere. Empty: unused.
  std::string master_address_file;

  // Deadline of each RPC attempt. A master that does not answer within it counts as unreachable
  // for that attempt.
  std::chrono::milliseconds rpc_deadline = kDefaultRpcDeadline;
  // Delays between attempts while the master does not answer (register, heartbeat, exit
  // reports). Heartbeat retries never wait longer than the heartbeat interval.
  BackoffOptions retry_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(2000), 2.0,
                               0.2};
  // How often the loop reaps workers and checks `stop`; bounds how late an exit is noticed.
  std::chrono::milliseconds poll_interval{50};
  // Heartbeat interval when the master's RegisterNodeReply leaves it 0.
  std::chrono::milliseconds default_heartbeat_interval{1000};
  // Reported in RegisterNode; empty: gethostname().
  std::string hostname;
  // memory.events used to recognise OOM kills; empty: this process's cgroup v2 (see oom_watch.h).
  std::string oom_events_path;
};

// Registers with the master (retrying with back-off while it is unreachable), starts
// launch.workers_per_node workers with their identity in the environment, heartbeats every
// heartbeat_interval_ms with a WorkerReport per worker, runs actions from the replies
// (KIND_RESTART_WORKER, KIND_STOP, KIND_SET_WORKER_COUNT), registers again when a reply says
// `reregister` (the master restarted; the workers keep running) and reports every worker exit with
// ReportExit.
//
// Returns OK when every worker has FINISHED (exited 0), after a STOP action, or after `stop`
// became true (workers stopped gracefully first). Returns an error, after stopping the workers,
// when the master stayed unreachable past master_unreachable (UNAVAILABLE), refused the token
// (PERMISSION_DENIED), sent a first registration the agent cannot run (INVALID_ARGUMENT: a
// worker count outside 0..kMaxWorkersPerNode), or when no worker is left running and some
// GAVE_UP (FAILED_PRECONDITION). An action it cannot run (a worker count out of range, an
// unknown rank or kind) is logged and skipped: it never ends the agent.
//
// Blocks the calling thread; starts none of its own beyond gRPC's.
Status RunAgent(const AgentOptions& options, const std::atomic<bool>& stop);

}  // namespace baton::agent
