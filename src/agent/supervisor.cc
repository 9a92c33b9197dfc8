#include "agent/supervisor.h"

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/spawn.h"
#include "common/clock.h"
#include "common/job_limits.h"

namespace baton::agent {
namespace {

// Exit code reported when the worker program could not be started (the shell's convention).
constexpr int kSpawnFailedExitCode = 127;

bool Alive(const WorkerInfo& w) { return w.pid > 0; }

}  // namespace

const char* WorkerPhaseName(WorkerPhase phase) {
  switch (phase) {
    case WorkerPhase::kRunning:
      return "RUNNING";
    case WorkerPhase::kBackoff:
      return "BACKOFF";
    case WorkerPhase::kFinished:
      return "FINISHED";
    case WorkerPhase::kGaveUp:
      return "GAVE_UP";
    case WorkerPhase::kStopped:
      return "STOPPED";
  }
  return "UNKNOWN";
}

const char* ExitKindName(ExitKind kind) {
  switch (kind) {
    case ExitKind::kExited:
      return "EXITED";
    case ExitKind::kSignaled:
      return "SIGNALED";
    case ExitKind::kOomKilled:
      return "OOM_KILLED";
  }
  return "UNKNOWN";
}

Supervisor::Supervisor(SupervisorOptions options)
    : options_(std::move(options)), oom_(options_.oom_events_path) {}

Supervisor::~Supervisor() {
  for (auto& slot : slots_) {
    if (!Alive(slot.info)) continue;
    killpg(slot.info.pid, SIGKILL);
    int status = 0;
    while (waitpid(slot.info.pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

std::chrono::milliseconds Supervisor::BackoffFor(int crash_restart) const {
  int64_t delay = options_.restart_backoff.count();
  const int64_t cap = options_.restart_backoff_max.count();
  for (int i = 1; i < crash_restart && delay < cap; ++i) delay *= 2;
  return std::chrono::milliseconds(std::min(delay, cap));
}

void Supervisor::Start(Slot& slot) {
  const int rank = slot.info.local_rank;
  SpawnRequest request;
  request.argv = options_.argv;
  request.env = options_.env;
  request.working_dir = options_.working_dir;
  if (options_.worker_env) {
    for (auto& [k, v] : options_.worker_env(rank)) request.env[k] = v;
  }
  slot.intent = StopIntent::kNone;
  slot.killed = false;
  slot.info.stopping = false;
  slot.ever_started = true;
  auto pid = SpawnProcess(request);
  if (!pid.ok()) {
    // A program that cannot start is treated like one that crashed at once, so the budget and
    // back-off bound the retries and the master hears about it.
    spdlog::error("{}worker {}: {}", options_.log_prefix, rank, pid.status().ToString());
    slot.info.pid = 0;
    ExitEvent event{rank, 0, ExitKind::kExited, kSpawnFailedExitCode, 0, false, 0};
    DecideCrashOrFinish(slot, event);
    pending_.push_back(event);
    return;
  }
  slot.info.pid = *pid;
  slot.info.phase = WorkerPhase::kRunning;
  spdlog::info("{}worker {}: started pid {} (restarts {})", options_.log_prefix, rank, *pid,
               slot.info.restarts);
}

void Supervisor::BeginStop(Slot& slot, StopIntent intent) {
  if (slot.info.stopping) {
    // Already on its way down; only the plan for afterwards changes, the SIGKILL timer stays.
    slot.intent = intent;
    return;
  }
  slot.intent = intent;
  slot.info.stopping = true;
  slot.killed = options_.stop_grace.count() <= 0;
  killpg(slot.info.pid, slot.killed ? SIGKILL : SIGTERM);
  slot.kill_at_ms = MonoMillis() + options_.stop_grace.count();
}

void Supervisor::DecideCrashOrFinish(Slot& slot, ExitEvent& event) {
  const bool clean = event.kind == ExitKind::kExited && event.exit_code == 0;
  if (clean) {
    slot.info.phase = WorkerPhase::kFinished;
  } else if (slot.info.crash_restarts < options_.restart_budget) {
    ++slot.info.crash_restarts;
    ++slot.info.restarts;
    slot.info.phase = WorkerPhase::kBackoff;
    slot.start_at_ms = MonoMillis() + BackoffFor(slot.info.crash_restarts).count();
    event.will_restart = true;
  } else {
    slot.info.phase = WorkerPhase::kGaveUp;
  }
  event.restarts = slot.info.restarts;
}

ExitEvent Supervisor::OnExit(Slot& slot, int wait_status) {
  ExitEvent event;
  event.local_rank = slot.info.local_rank;
  event.pid = slot.info.pid;
  if (WIFEXITED(wait_status)) {
    event.kind = ExitKind::kExited;
    event.exit_code = WEXITSTATUS(wait_status);
  } else if (WIFSIGNALED(wait_status)) {
    event.signal = WTERMSIG(wait_status);
    // A SIGKILL we sent ourselves is never the OOM killer's, and must not consume its count.
    bool ours = slot.killed;
    event.kind = event.signal == SIGKILL && !ours && oom_.ConsumeOomKill() ? ExitKind::kOomKilled
                                                                           : ExitKind::kSignaled;
  }
  // The worker's process group does not outlive its leader: helpers it started go with it.
  killpg(slot.info.pid, SIGKILL);
  slot.info.pid = 0;
  slot.info.stopping = false;

  const StopIntent intent = slot.intent;
  slot.intent = StopIntent::kNone;
  if (intent == StopIntent::kRestart && slot.active) {
    ++slot.info.restarts;
    event.will_restart = true;
    event.restarts = slot.info.restarts;
    pending_start_.push_back(slot.info.local_rank);
  } else if (intent != StopIntent::kNone || !slot.active) {
    slot.info.phase = WorkerPhase::kStopped;
    event.restarts = slot.info.restarts;
  } else {
    DecideCrashOrFinish(slot, event);
  }
  spdlog::log(
      event.will_restart || event.exit_code == 0 ? spdlog::level::info : spdlog::level::warn,
      "{}worker {}: pid {} {} code {} signal {} -> {}{}", options_.log_prefix, event.local_rank,
      event.pid, ExitKindName(event.kind), event.exit_code, event.signal,
      WorkerPhaseName(slot.info.phase), event.will_restart ? " (will restart)" : "");
  return event;
}

std::vector<ExitEvent> Supervisor::Poll() {
  std::vector<ExitEvent> events;
  const int64_t now = MonoMillis();
  for (auto& slot : slots_) {
    if (!Alive(slot.info)) continue;
    int status = 0;
    pid_t r = waitpid(slot.info.pid, &status, WNOHANG);
    if (r == slot.info.pid) {
      events.push_back(OnExit(slot, status));
    } else if (r < 0 && errno == ECHILD) {
      // Someone else reaped it (should not happen: nothing else waits for our children).
      spdlog::error("{}worker {}: pid {} vanished without a status", options_.log_prefix,
                    slot.info.local_rank, slot.info.pid);
      events.push_back(OnExit(slot, 255 << 8));
    } else if (slot.info.stopping && !slot.killed && now >= slot.kill_at_ms) {
      spdlog::warn("{}worker {}: pid {} ignored SIGTERM for {} ms, sending SIGKILL",
                   options_.log_prefix, slot.info.local_rank, slot.info.pid,
                   options_.stop_grace.count());
      killpg(slot.info.pid, SIGKILL);
      slot.killed = true;
    }
  }
  // Restarts asked for by RestartWorker happen as soon as the old process is gone.
  for (int rank : std::exchange(pending_start_, {})) {
    if (rank < static_cast<int>(slots_.size())) Start(slots_[rank]);
  }
  for (auto& slot : slots_) {
    if (slot.active && !Alive(slot.info) && slot.info.phase == WorkerPhase::kBackoff &&
        now >= slot.start_at_ms) {
      Start(slot);
    }
  }
  // Ranks above the worker count disappear once their process is reaped.
  while (!slots_.empty() && !slots_.back().active && !Alive(slots_.back().info)) slots_.pop_back();
  for (auto& e : std::exchange(pending_, {})) events.push_back(e);
  return events;
}

Status Supervisor::SetWorkerCount(int count) {
  // Checked before anything changes: a bad count (from a buggy or hostile master) must neither
  // crash the agent nor disturb the workers it runs.
  if (count < 0 || count > kMaxWorkersPerNode) {
    return Status::InvalidArgument("worker count must be in 0.." +
                                   std::to_string(kMaxWorkersPerNode) + ", got " +
                                   std::to_string(count));
  }
  count_ = count;
  while (static_cast<int>(slots_.size()) < count) {
    Slot slot;
    slot.info.local_rank = static_cast<int>(slots_.size());
    slot.info.phase = WorkerPhase::kStopped;
    slots_.push_back(slot);
  }
  for (auto& slot : slots_) {
    const bool active = slot.info.local_rank < count;
    slot.active = active;
    if (active) {
      if (slot.info.stopping && slot.intent == StopIntent::kStop) {
        slot.intent = StopIntent::kRestart;  // scaled down and back up before it exited
      } else if (!Alive(slot.info) && slot.info.phase == WorkerPhase::kStopped) {
        if (slot.ever_started) ++slot.info.restarts;
        Start(slot);
      }
    } else if (Alive(slot.info)) {
      BeginStop(slot, StopIntent::kStop);
    } else {
      slot.info.phase = WorkerPhase::kStopped;
    }
  }
  while (!slots_.empty() && !slots_.back().active && !Alive(slots_.back().info)) slots_.pop_back();
  return Status::Ok();
}

Status Supervisor::RestartWorker(int local_rank) {
  if (local_rank < 0 || local_rank >= count_) {
    return Status::InvalidArgument("no worker with local rank " + std::to_string(local_rank) +
                                   " (worker count " + std::to_string(count_) + ")");
  }
  Slot& slot = slots_[local_rank];
  if (Alive(slot.info)) {
    BeginStop(slot, StopIntent::kRestart);
  } else {
    ++slot.info.restarts;
    Start(slot);
  }
  return Status::Ok();
}

void Supervisor::StopAll() {
  for (auto& slot : slots_) {
    if (Alive(slot.info)) {
      BeginStop(slot, StopIntent::kStop);
    } else if (slot.info.phase == WorkerPhase::kBackoff) {
      slot.info.phase = WorkerPhase::kStopped;
    }
  }
  pending_start_.clear();
}

std::vector<ExitEvent> Supervisor::StopAllAndWait() {
  StopAll();
  std::vector<ExitEvent> events;
  while (true) {
    for (auto& e : Poll()) events.push_back(e);
    if (!AnyAlive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return events;
}

std::vector<WorkerInfo> Supervisor::Workers() const {
  std::vector<WorkerInfo> out;
  for (const auto& slot : slots_) out.push_back(slot.info);
  return out;
}

bool Supervisor::AnyAlive() const {
  return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return Alive(s.info); });
}

int Supervisor::CountInPhase(WorkerPhase phase) const {
  int n = 0;
  for (int r = 0; r < count_ && r < static_cast<int>(slots_.size()); ++r) {
    if (slots_[r].info.phase == phase) ++n;
  }
  return n;
}

bool Supervisor::AllFinished() const {
  return count_ > 0 && CountInPhase(WorkerPhase::kFinished) == count_;
}

bool Supervisor::AllTerminal() const {
  if (AnyAlive()) return false;
  return CountInPhase(WorkerPhase::kFinished) + CountInPhase(WorkerPhase::kGaveUp) +
             CountInPhase(WorkerPhase::kStopped) ==
         count_;
}

}  // namespace baton::agent
