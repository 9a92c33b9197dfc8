// `baton run JOB.yaml`: the local backend. Starts the job's master and its agents as processes on
// this machine, supervises them (a dead master is restarted on the same state dir and port; a dead
// agent is restarted and its node's old leases are re-queued), shows a live progress line, and
// returns with the master's final state. Running the same command again resumes the job.
//
// It owns the state dir for its whole life (launch/run_lock.h: a second run is refused, exit 2),
// and its master and agents die with it (--supervisor-pid), however it dies.
#pragma once

#include <atomic>
#include <string>

namespace baton::launch {

struct LocalRunOptions {
  std::string spec_path;
  // The `baton` executable to start masters and agents with (default: this process's own).
  std::string baton_binary;
  // Progress line period when stderr is not a terminal. Default 5 s.
  int64_t progress_log_ms = 5000;
  // How long to wait for a started master to publish its address. Default 30 s.
  int64_t master_start_timeout_ms = 30000;
};

// Exit codes: 0 job SUCCEEDED (or PARTIAL, allowed by the spec), 1 job FAILED or could not run,
// 2 invalid spec or state dir (nothing was started), 4 the job's state could not be written (a
// full or failing state disk; resume by running again once it is fixed), 130 interrupted (resume by
// running again).
int RunLocalJob(const LocalRunOptions& options, const std::atomic<bool>& interrupted);

}  // namespace baton::launch
