// Supervisor: starts, watches, restarts and stops the worker processes of one node.
//
// Workers are identified by their local rank 0..N-1. The supervisor is a state machine driven by
// Poll(): it never blocks and owns no thread, so the agent loop can interleave it with heartbeats
// and a test can step it deterministically. It is not thread-safe; one thread drives it.
//
// Per worker:
//   RUNNING --exit 0----------------------------> FINISHED (never restarted: no more work)
//   RUNNING --non-zero exit or signal-----------> BACKOFF --delay--> RUNNING    (within budget)
//                                            \--> GAVE_UP                       (budget spent)
//   RUNNING --Stop/scale-down (TERM, grace, KILL)-> STOPPED
//   any     --RestartWorker (TERM, grace, KILL)--> RUNNING (not charged to the budget)
//
// Restart back-off: the k-th crash restart (k = 1, 2, ...) waits
// min(restart_backoff * 2^(k-1), restart_backoff_max).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "agent/oom_watch.h"
#include "common/defaults.h"
#include "common/status.h"

namespace baton::agent {

struct SupervisorOptions {
  std::vector<std::string> argv;           // the worker program; must not be empty
  std::map<std::string, std::string> env;  // added to the agent's own environment
  std::string working_dir;                 // empty: the agent's working directory
  // Extra environment per worker (its identity: ranks, ids). Called at every start.
  std::function<std::map<std::string, std::string>(int local_rank)> worker_env;

  // Crash restarts per worker before GAVE_UP; 0 = never restart. Defaults: common/defaults.h.
  int restart_budget = defaults::kRestartBudget;
  std::chrono::milliseconds restart_backoff{defaults::kRestartBackoffMs};  // first restart delay
  std::chrono::milliseconds restart_backoff_max{defaults::kRestartBackoffMaxMs};  // its cap
  // Stop: SIGTERM to the worker's process group, SIGKILL after this long if it is still alive.
  std::chrono::milliseconds stop_grace{defaults::kStopGraceMs};
  // memory.events file for OOM attribution; empty = this process's cgroup v2 (see oom_watch.h).
  std::string oom_events_path;
  // Prepended to every log line, e.g. "[node-a] ".
  std::string log_prefix;
};

enum class WorkerPhase { kRunning, kBackoff, kFinished, kGaveUp, kStopped };
enum class ExitKind { kExited, kSignaled, kOomKilled };

const char* WorkerPhaseName(WorkerPhase phase);
const char* ExitKindName(ExitKind kind);

// One observed end of a worker process, as the master wants to hear about it.
struct ExitEvent {
  int local_rank = 0;
  pid_t pid = 0;
  ExitKind kind = ExitKind::kExited;
  int exit_code = 0;  // for kExited (127 when the program could not be started at all)
  int signal = 0;     // for kSignaled and kOomKilled
  bool will_restart = false;
  int restarts = 0;  // restarts of this worker so far (all causes), after this event's decision
};

// A snapshot of one worker for heartbeats and tests.
struct WorkerInfo {
  int local_rank = 0;
  pid_t pid = 0;  // 0 when no process is alive
  WorkerPhase phase = WorkerPhase::kRunning;
  int restarts = 0;        // every respawn, whatever the cause
  int crash_restarts = 0;  // the ones charged to restart_budget
  bool stopping = false;   // SIGTERM sent, waiting for it to exit
};

class Supervisor {
 public:
  explicit Supervisor(SupervisorOptions options);
  // Kills (SIGKILL) and reaps whatever is still running: never leaves orphans behind. Call
  // StopAll() first for a graceful stop.
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Grows or shrinks to `count` workers (ranks 0..count-1). Growing starts the new ranks now
  // (and revives stopped ones); shrinking stops the highest ranks gracefully. InvalidArgument,
  // changing nothing, unless 0 <= count <= kMaxWorkersPerNode (common/job_limits.h).
  Status SetWorkerCount(int count);
  int worker_count() const { return count_; }

  // Stops one worker gracefully (if alive) and starts it again; revives FINISHED, GAVE_UP or
  // STOPPED workers too. Not charged to the restart budget: the master asked for it.
  Status RestartWorker(int local_rank);

  // Starts a graceful stop of every worker; each one alive or in BACKOFF ends STOPPED, whatever
  // its exit status. Poll() completes it.
  void StopAll();

  // Reaps exited workers, classifies and decides each exit, escalates overdue stops to SIGKILL
  // and starts workers whose back-off has passed. Returns the exits observed in this call.
  std::vector<ExitEvent> Poll();

  // StopAll() then Poll() until no worker process is alive; returns every exit seen meanwhile.
  std::vector<ExitEvent> StopAllAndWait();

  // Workers of ranks 0..worker_count()-1, plus higher ranks still shutting down after a scale-down.
  std::vector<WorkerInfo> Workers() const;

  bool AnyAlive() const;     // some worker process has not been reaped yet
  bool AllFinished() const;  // worker_count() > 0 and every current rank is FINISHED
  bool AllTerminal() const;  // every current rank is FINISHED, GAVE_UP or STOPPED, none alive
  int CountInPhase(WorkerPhase phase) const;

 private:
  enum class StopIntent { kNone, kStop, kRestart };
  struct Slot {
    WorkerInfo info;
    StopIntent intent = StopIntent::kNone;
    int64_t kill_at_ms = 0;   // monotonic time to escalate to SIGKILL while stopping
    bool killed = false;      // SIGKILL already sent
    int64_t start_at_ms = 0;  // monotonic time of the next start, in BACKOFF
    bool active = true;       // rank < count_
    bool ever_started = false;
  };

  void Start(Slot& slot);
  // Applies the restart policy to an exit that nobody asked for.
  void DecideCrashOrFinish(Slot& slot, ExitEvent& event);
  void BeginStop(Slot& slot, StopIntent intent);
  ExitEvent OnExit(Slot& slot, int wait_status);
  std::chrono::milliseconds BackoffFor(int crash_restart) const;

  SupervisorOptions options_;
  OomWatch oom_;
  std::vector<Slot> slots_;  // index == local rank
  int count_ = 0;
  std::vector<ExitEvent> pending_;  // failed starts, reported by the next Poll()
  std::vector<int> pending_start_;  // ranks to start again once Poll() finishes reaping
};

}  // namespace baton::agent
