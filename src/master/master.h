// The per-job master: Stateful DDS, node registry and monitor, controller, status and metrics,
// served over gRPC. One process per job; its state lives in SQLite in the job's state dir, so a
// master killed at any moment and started again on the same dir carries on.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "common/status.h"
#include "spec/job_spec.h"

namespace baton::master {

struct MasterOptions {
  JobSpec spec;
  std::string token;  // the job secret every RPC must carry
  // Port to listen on (overrides spec.master.port); 0 lets the system pick one.
  int32_t port = 0;
  // After the job has finished and every live agent has been told to stop, the master waits this
  // long for final status queries before it exits. Default 2 s.
  int64_t linger_ms = 2000;
  // Upper bound on waiting for agents to collect their STOP after the job finished. Default 30 s.
  int64_t stop_wait_ms = 30000;
  // Monitor period: lease expiry and node death are checked this often. Default 200 ms.
  int64_t monitor_period_ms = 200;
  // Return shards leased before this start to the queue at once (without charging their retry
  // budget), and give dead-lettered shards a fresh retry budget (the cause may have been fixed: a
  // full disk, a worker bug). Only correct when no worker of an earlier run can still be alive:
  // `baton run` sets it when it starts a job, not when it restarts a master mid-run. Default
  // false: recovered leases stay with their workers until renewed, committed or expired.
  bool release_recovered_leases = false;
};

class Master {
 public:
  virtual ~Master() = default;
  // Opens (or resumes) the job in spec.master.state_dir, binds, writes the bound address to
  // STATE_DIR/master.addr, and starts serving.
  static Result<std::unique_ptr<Master>> Start(MasterOptions options);

  virtual std::string address() const = 0;
  // Blocks until the job is over (and its agents stopped) or Shutdown is called.
  virtual void Wait() = 0;
  virtual void Shutdown() = 0;
  // True once every shard is DONE or dead-lettered.
  virtual bool finished() const = 0;
  // Exit status for `baton master`: 0 SUCCEEDED or PARTIAL, 1 FAILED, 3 interrupted, 4 ended
  // unfinished because no agent was alive for timeouts.agents_gone_ms, 5 the state store failed
  // (e.g. the state dir's disk is full; nothing acknowledged is lost: rerun to resume).
  virtual int exit_code() const = 0;
};

// Paths inside a job's state dir.
std::string StateDbPath(const std::string& state_dir);
std::string TokenPath(const std::string& state_dir);
std::string MasterAddrPath(const std::string& state_dir);
// Held (flock) by the master serving the state dir, for its whole life.
std::string MasterLockPath(const std::string& state_dir);

}  // namespace baton::master
