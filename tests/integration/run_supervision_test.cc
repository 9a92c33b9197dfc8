// `baton run` as the supervisor of a job's processes, with real processes and real signals: it
// owns its state dir (a second run is refused without harm), its children die with it, and it
// ends a job on the master's final word, never on a status older than the exits it saw.
#include <signal.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "job_harness.h"

namespace baton::testing {
namespace {

void ExpectExactOutput(const WordcountJob& job) {
  auto got = job.OutputCounts();
  EXPECT_EQ(got.size(), job.expected().size());
  EXPECT_TRUE(got == job.expected()) << "output word counts differ from the input's";
}

std::string Join(const std::vector<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) out += (out.empty() ? "" : " ") + std::to_string(p);
  return out;
}

TEST(RunSupervision, SecondRunOfARunningJobIsRefusedAndLeavesTheFirstAlone) {
  WordcountJob job({.lines = 12000, .records_per_shard = 500, .delay_us_per_record = 200});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(2)) << job.ReadRunLog();
  const std::string address = job.ReadStateFile("master.addr");
  ASSERT_FALSE(address.empty());

  std::string out;
  EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec_path()}, &out), 2) << out;
  EXPECT_NE(out.find("another `baton run` (pid " + std::to_string(job.run_pid()) + ")"),
            std::string::npos)
      << out;
  // The first run's master is still found through its state dir.
  EXPECT_EQ(job.ReadStateFile("master.addr"), address);
  EXPECT_EQ(RunCommand({BATON_BIN, "status", "--state-dir", job.state_dir()}, &out), 0) << out;

  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
}

TEST(RunSupervision, KilledRunTakesItsProcessesAlongAndARerunAtOnceResumes) {
  WordcountJob job({.lines = 16000, .records_per_shard = 500, .delay_us_per_record = 200});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(4)) << job.ReadRunLog();
  const std::vector<pid_t> children = job.JobPids();
  ASSERT_GT(job.MasterPid(), 0);
  ASSERT_GT(job.AgentPid("node-0"), 0);
  ASSERT_FALSE(job.WorkerPids().empty());

  ASSERT_EQ(::kill(job.run_pid(), SIGKILL), 0);
  EXPECT_EQ(job.Wait(), 128 + SIGKILL);
  // Rerun at once: the old master may still be dying, which must not make the rerun fail.
  job.Start();
  auto survivors = [&] {
    std::vector<pid_t> alive;
    for (pid_t p : children) {
      if (ProcessAlive(p)) alive.push_back(p);
    }
    return alive;
  };
  EXPECT_TRUE(WaitFor([&] { return survivors().empty(); }, std::chrono::seconds(10)))
      << "processes of the killed run still alive: " << Join(survivors());
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
}

// The thread of the master named "baton-monitor" (0 if not found yet).
pid_t MonitorThread(pid_t master) {
  std::error_code ec;
  for (const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(master) + "/task", ec)) {
    std::ifstream comm(e.path() / "comm");
    std::string name;
    std::getline(comm, name);
    if (name == "baton-monitor") return static_cast<pid_t>(std::stol(e.path().filename()));
  }
  return 0;
}

// Holds one thread of another process stopped (ptrace), the rest of it running.
class ThreadStop {
 public:
  explicit ThreadStop(pid_t tid) : tid_(tid) {
    if (::ptrace(PTRACE_SEIZE, tid_, nullptr, nullptr) != 0) return;
    int st = 0;
    stopped_ = ::ptrace(PTRACE_INTERRUPT, tid_, nullptr, nullptr) == 0 &&
               ::waitpid(tid_, &st, __WALL) == tid_ && WIFSTOPPED(st);
  }
  ~ThreadStop() { ::ptrace(PTRACE_DETACH, tid_, nullptr, nullptr); }
  bool stopped() const { return stopped_; }

 private:
  pid_t tid_;
  bool stopped_ = false;
};

TEST(RunSupervision, AgentsThatExitBeforeTheMasterFinalizesDoNotFailTheJob) {
  // The master finalizes a job on its monitor thread's next pass after the last commit; the
  // agents exit as soon as their workers hear there is no more work. Holding the monitor thread
  // stopped makes that window as long as the test wants: every shard commits, every agent exits,
  // and the master still reports RUNNING. `baton run` must wait for its verdict.
  WordcountJob job(
      {.lines = 4000, .records_per_shard = 500, .nodes = 1, .delay_us_per_record = 100});
  job.Start();
  pid_t monitor = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        pid_t master = job.MasterPid();
        monitor = master > 0 ? MonitorThread(master) : 0;
        return monitor > 0 && job.AgentPid("node-0") > 0;
      },
      std::chrono::seconds(30)))
      << job.ReadRunLog();
  {
    ThreadStop stop(monitor);
    ASSERT_TRUE(stop.stopped()) << "cannot ptrace the master's monitor thread";
    ASSERT_TRUE(WaitFor([&] { return job.AgentPid("node-0") == 0; }, std::chrono::seconds(60)))
        << job.ReadRunLog();
    EXPECT_EQ(job.CommittedParts(), 8);
    EXPECT_FALSE(std::filesystem::exists(job.output_dir() + "/_MANIFEST"));
    // Several of `baton run`'s polls see no agent and a RUNNING master with nothing left to do.
    std::this_thread::sleep_for(std::chrono::seconds(2));
    EXPECT_TRUE(ProcessAlive(job.run_pid())) << job.ReadRunLog();
  }  // the monitor thread runs again and finalizes the job
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
  EXPECT_TRUE(std::filesystem::exists(job.output_dir() + "/_MANIFEST"));
  EXPECT_FALSE(std::filesystem::exists(job.output_dir() + "/.staging"));
}

}  // namespace
}  // namespace baton::testing
