// Supervisor behaviour with real processes: every worker here is a /bin/sh program.
#include "agent/supervisor.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include <gtest/gtest.h>

#include "common/clock.h"
#include "common/job_limits.h"

namespace baton::agent {
namespace {

using std::chrono::milliseconds;

SupervisorOptions Shell(const std::string& script) {
  SupervisorOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.restart_budget = 3;
  o.restart_backoff = milliseconds(20);
  o.restart_backoff_max = milliseconds(80);
  o.stop_grace = milliseconds(200);
  o.oom_events_path = "/nonexistent/memory.events";  // OOM attribution off unless a test wants it
  return o;
}

// Polls until `done` holds or `timeout` passes; collects every exit seen.
bool PollUntil(Supervisor& sup, std::vector<ExitEvent>& events, const std::function<bool()>& done,
               milliseconds timeout = milliseconds(5000)) {
  const int64_t give_up = MonoMillis() + timeout.count();
  while (MonoMillis() < give_up) {
    for (auto& e : sup.Poll()) events.push_back(e);
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return false;
}

// True while `pid` runs; a zombie waiting for someone else to reap it counts as gone.
bool ProcessExists(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Whether `pid` ignores `sig` (the SigIgn mask of /proc/PID/status).
bool IgnoresSignal(pid_t pid, int sig) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("SigIgn:")) {
      return (std::stoull(line.substr(7), nullptr, 16) >> (sig - 1)) & 1;
    }
  }
  return false;
}

TEST(SupervisorTest, ExitZeroIsFinishedAndNotRestarted) {
  Supervisor sup(Shell("exit 0"));
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return sup.AllFinished(); }));
  // Give a wrongly scheduled restart the chance to show up.
  std::this_thread::sleep_for(milliseconds(50));
  for (auto& e : sup.Poll()) events.push_back(e);
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.kind, ExitKind::kExited);
    EXPECT_EQ(e.exit_code, 0);
    EXPECT_FALSE(e.will_restart);
  }
  for (const auto& w : sup.Workers()) {
    EXPECT_EQ(w.phase, WorkerPhase::kFinished);
    EXPECT_EQ(w.restarts, 0);
    EXPECT_EQ(w.pid, 0);
  }
  EXPECT_TRUE(sup.AllTerminal());
}

TEST(SupervisorTest, CrashIsRestartedWithinBudgetWithGrowingBackoff) {
  // Fails twice, then succeeds: a marker file counts the attempts across restarts.
  auto dir = std::filesystem::temp_directory_path() / ("sup_test_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto counter = (dir / "attempts").string();
  std::filesystem::remove(counter);
  Supervisor sup(
      Shell("echo x >> " + counter + "; [ $(wc -l < " + counter + ") -ge 3 ] || exit 3"));
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  std::vector<ExitEvent> events;
  std::vector<int64_t> exit_times;
  const int64_t t0 = MonoMillis();
  ASSERT_TRUE(PollUntil(sup, events, [&] {
    while (exit_times.size() < events.size()) exit_times.push_back(MonoMillis() - t0);
    return sup.AllFinished();
  }));
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].exit_code, 3);
  EXPECT_TRUE(events[0].will_restart);
  EXPECT_EQ(events[0].restarts, 1);
  EXPECT_EQ(events[1].exit_code, 3);
  EXPECT_TRUE(events[1].will_restart);
  EXPECT_EQ(events[1].restarts, 2);
  EXPECT_EQ(events[2].exit_code, 0);
  EXPECT_FALSE(events[2].will_restart);
  // Back-off 20 ms, then 40 ms: the third exit comes at least 60 ms after the first.
  EXPECT_GE(exit_times[2] - exit_times[0], 60);
  EXPECT_EQ(sup.Workers()[0].crash_restarts, 2);
  std::filesystem::remove_all(dir);
}

TEST(SupervisorTest, GivesUpPastRestartBudget) {
  auto opts = Shell("exit 7");
  opts.restart_budget = 2;
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return sup.CountInPhase(WorkerPhase::kGaveUp) == 1; }));
  ASSERT_EQ(events.size(), 3u);  // the first run and two restarts
  EXPECT_TRUE(events[0].will_restart);
  EXPECT_TRUE(events[1].will_restart);
  EXPECT_FALSE(events[2].will_restart);
  EXPECT_EQ(events[2].exit_code, 7);
  EXPECT_EQ(events[2].restarts, 2);
  EXPECT_TRUE(sup.AllTerminal());
  EXPECT_FALSE(sup.AllFinished());
}

TEST(SupervisorTest, SigkilledWorkerIsSignaledAndRestarted) {
  Supervisor sup(Shell("exec sleep 100"));
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  const pid_t first = sup.Workers()[0].pid;
  ASSERT_GT(first, 0);
  ASSERT_EQ(kill(first, SIGKILL), 0);
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] {
    return !events.empty() && sup.Workers()[0].phase == WorkerPhase::kRunning;
  }));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ExitKind::kSignaled);
  EXPECT_EQ(events[0].signal, SIGKILL);
  EXPECT_EQ(events[0].pid, first);
  EXPECT_TRUE(events[0].will_restart);
  EXPECT_NE(sup.Workers()[0].pid, first);
  EXPECT_EQ(sup.Workers()[0].restarts, 1);
  sup.StopAllAndWait();
}

TEST(SupervisorTest, SigkillCountedByCgroupIsOomKilled) {
  // A stand-in memory.events whose oom_kill counter the test bumps, as the kernel would.
  auto path =
      std::filesystem::temp_directory_path() / ("sup_oom_" + std::to_string(getpid()) + ".events");
  auto write_count = [&](int n) {
    std::ofstream(path) << "low 0\nhigh 0\nmax 3\noom 1\noom_kill " << n << "\n";
  };
  write_count(4);
  auto opts = Shell("exec sleep 100");
  opts.oom_events_path = path.string();
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  write_count(5);  // one OOM kill ...
  ASSERT_EQ(kill(sup.Workers()[0].pid, SIGKILL), 0);
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return events.size() == 1; }));
  EXPECT_EQ(events[0].kind, ExitKind::kOomKilled);
  EXPECT_EQ(events[0].signal, SIGKILL);
  // ... explains one death only: the next SIGKILL is a plain signal.
  ASSERT_EQ(kill(sup.Workers()[1].pid, SIGKILL), 0);
  ASSERT_TRUE(PollUntil(sup, events, [&] { return events.size() == 2; }));
  EXPECT_EQ(events[1].kind, ExitKind::kSignaled);
  sup.StopAllAndWait();
  std::filesystem::remove(path);
}

TEST(SupervisorTest, StopSendsTermThenKillToWorkerIgnoringTerm) {
  auto opts = Shell("trap '' TERM; sleep 100");
  opts.stop_grace = milliseconds(300);
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  const pid_t pid = sup.Workers()[0].pid;
  // Wait until the shell has installed its trap, however slow its start on a loaded machine.
  for (int i = 0; i < 2000 && !IgnoresSignal(pid, SIGTERM); ++i) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_TRUE(IgnoresSignal(pid, SIGTERM)) << "the shell never installed its trap";
  const int64_t t0 = MonoMillis();
  auto events = sup.StopAllAndWait();
  const int64_t took = MonoMillis() - t0;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ExitKind::kSignaled);
  EXPECT_EQ(events[0].signal, SIGKILL);  // SIGTERM was ignored, the grace ran out
  EXPECT_FALSE(events[0].will_restart);
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 3000);
  EXPECT_EQ(sup.Workers()[0].phase, WorkerPhase::kStopped);
  EXPECT_FALSE(ProcessExists(pid));
}

TEST(SupervisorTest, StopEndsWorkerThatHonoursTermQuickly) {
  auto opts = Shell("exec sleep 100");
  opts.stop_grace = milliseconds(5000);
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  const int64_t t0 = MonoMillis();
  auto events = sup.StopAllAndWait();
  EXPECT_LT(MonoMillis() - t0, 2000);
  ASSERT_EQ(events.size(), 2u);
  for (const auto& e : events) {
    EXPECT_EQ(e.signal, SIGTERM);
    EXPECT_FALSE(e.will_restart);
  }
  EXPECT_EQ(sup.CountInPhase(WorkerPhase::kStopped), 2);
}

TEST(SupervisorTest, StopKillsTheWorkersChildrenToo) {
  // The shell runs sleep as a child; a SIGKILL of the shell alone would orphan it.
  auto pidfile =
      std::filesystem::temp_directory_path() / ("sup_child_" + std::to_string(getpid()) + ".pid");
  auto opts = Shell("trap '' TERM; sleep 100 & echo $! > " + pidfile.string() + "; wait");
  opts.stop_grace = milliseconds(100);
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  pid_t child = 0;
  const int64_t give_up = MonoMillis() + 5000;
  while (child == 0 && MonoMillis() < give_up) {
    std::ifstream(pidfile) >> child;
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_GT(child, 0);
  sup.StopAllAndWait();
  // The child is not ours to reap; it is gone once init reaps it.
  const int64_t until = MonoMillis() + 2000;
  while (ProcessExists(child) && MonoMillis() < until) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_FALSE(ProcessExists(child));
  std::filesystem::remove(pidfile);
}

TEST(SupervisorTest, ScaleUpAndDownStopsHighestRanks) {
  Supervisor sup(Shell("exec sleep 100"));
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  ASSERT_EQ(sup.Workers().size(), 2u);
  ASSERT_TRUE(sup.SetWorkerCount(4).ok());
  auto workers = sup.Workers();
  ASSERT_EQ(workers.size(), 4u);
  for (const auto& w : workers) EXPECT_GT(w.pid, 0);
  const pid_t rank0 = workers[0].pid;
  const pid_t rank1 = workers[1].pid;

  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return sup.Workers().size() == 1; }));
  ASSERT_EQ(events.size(), 3u);
  for (const auto& e : events) {
    EXPECT_GE(e.local_rank, 1);
    EXPECT_FALSE(e.will_restart);
  }
  EXPECT_EQ(sup.Workers()[0].pid, rank0);  // rank 0 untouched
  EXPECT_FALSE(ProcessExists(rank1));
  EXPECT_EQ(sup.worker_count(), 1);

  ASSERT_TRUE(sup.SetWorkerCount(3).ok());
  ASSERT_EQ(sup.Workers().size(), 3u);
  for (const auto& w : sup.Workers()) {
    EXPECT_EQ(w.phase, WorkerPhase::kRunning);
    EXPECT_GT(w.pid, 0);
  }
  sup.StopAllAndWait();
}

TEST(SupervisorTest, RestartWorkerActionReplacesProcessWithoutChargingBudget) {
  auto opts = Shell("exec sleep 100");
  opts.restart_budget = 0;
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  const pid_t old = sup.Workers()[1].pid;
  ASSERT_TRUE(sup.RestartWorker(1).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] {
    auto w = sup.Workers()[1];
    return w.pid > 0 && w.pid != old;
  }));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].will_restart);
  EXPECT_EQ(sup.Workers()[1].restarts, 1);
  EXPECT_EQ(sup.Workers()[1].crash_restarts, 0);
  EXPECT_FALSE(sup.RestartWorker(2).ok());
  sup.StopAllAndWait();
}

TEST(SupervisorTest, WorkerGetsEnvironmentAndWorkingDirectory) {
  auto dir = std::filesystem::temp_directory_path() / ("sup_env_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto opts = Shell("echo \"$FROM_LAUNCH $BATON_LOCAL_RANK $(pwd)\" > out_$BATON_LOCAL_RANK");
  opts.env = {{"FROM_LAUNCH", "hello"}};
  opts.working_dir = dir.string();
  opts.worker_env = [](int rank) {
    return std::map<std::string, std::string>{{"BATON_LOCAL_RANK", std::to_string(rank)}};
  };
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return sup.AllFinished(); }));
  for (int rank = 0; rank < 2; ++rank) {
    std::ifstream in(dir / ("out_" + std::to_string(rank)));
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line,
              "hello " + std::to_string(rank) + " " + std::filesystem::canonical(dir).string());
  }
  std::filesystem::remove_all(dir);
}

TEST(SupervisorTest, OutOfRangeWorkerCountIsRefusedAndChangesNothing) {
  Supervisor sup(Shell("sleep 30"));
  ASSERT_TRUE(sup.SetWorkerCount(2).ok());
  const std::vector<WorkerInfo> before = sup.Workers();
  for (int bad : {-1, kMaxWorkersPerNode + 1, 2000000000}) {
    Status s = sup.SetWorkerCount(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::to_string(kMaxWorkersPerNode)), std::string::npos)
        << s.message();
  }
  EXPECT_EQ(sup.worker_count(), 2);
  const std::vector<WorkerInfo> after = sup.Workers();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_EQ(after[i].pid, before[i].pid);
    EXPECT_TRUE(ProcessExists(after[i].pid));
  }
  sup.StopAllAndWait();
}

TEST(SupervisorTest, MissingProgramCountsAsCrashAndGivesUp) {
  SupervisorOptions opts = Shell("");
  opts.argv = {"/nonexistent/program"};
  opts.restart_budget = 1;
  Supervisor sup(opts);
  ASSERT_TRUE(sup.SetWorkerCount(1).ok());
  std::vector<ExitEvent> events;
  ASSERT_TRUE(PollUntil(sup, events, [&] { return sup.CountInPhase(WorkerPhase::kGaveUp) == 1; }));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].exit_code, 127);
  EXPECT_TRUE(events[0].will_restart);
  EXPECT_FALSE(events[1].will_restart);
}

}  // namespace
}  // namespace baton::agent
