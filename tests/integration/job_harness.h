// Harness for end-to-end tests: generates a wordcount job in a temporary directory, runs the real
// `baton` binary as a child process, finds and signals the job's real processes, and checks the
// output against counts computed directly from the input.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace baton::testing {

struct WordcountJobOptions {
  int lines = 20000;
  int records_per_shard = 500;
  int nodes = 2;
  int workers_per_node = 2;
  int64_t delay_us_per_record = 0;  // slows every worker down (so a test can act mid-job)
  int slow_rank = -1;               // global rank of a worker slowed by slow_factor
  int slow_factor = 1;
  int64_t lease_ms = 30000;
  int64_t node_dead_ms = 10000;
  int max_shard_retries = 3;
  int metrics_port = 0;
  int64_t master_unreachable_ms = -1;  // timeouts.master_unreachable_ms; -1: not in the spec
  int64_t agents_gone_ms = -1;         // timeouts.agents_gone_ms; -1: not in the spec
  std::string extra_yaml = "";         // appended verbatim
  std::string worker_bin = "";         // the worker program; empty: wordcount
  std::string extra_env_yaml = "";     // lines under worker.env, each "    NAME: \"value\"\n"
};

class WordcountJob {
 public:
  explicit WordcountJob(const WordcountJobOptions& options);
  ~WordcountJob();

  const std::string& dir() const { return dir_; }
  std::string spec_path() const { return dir_ + "/job.yaml"; }
  std::string state_dir() const { return dir_ + "/state"; }
  std::string output_dir() const { return dir_ + "/out"; }
  std::string run_log() const { return dir_ + "/run.log"; }
  const std::map<std::string, uint64_t>& expected() const { return expected_; }

  // Starts `baton run job.yaml` in the background (output to run.log).
  void Start();
  // Waits for `baton run` to exit; returns its exit code (-1 on timeout, after killing it).
  int Wait(std::chrono::seconds timeout = std::chrono::seconds(240));
  // Runs to completion.
  int Run(std::chrono::seconds timeout = std::chrono::seconds(240)) {
    Start();
    return Wait(timeout);
  }

  // SIGKILLs every process of the job at once (`baton run`, master, agents, workers): a machine
  // losing power, as far as the job can tell.
  void KillEverything();

  // The running `baton run` (0 when none).
  pid_t run_pid() const { return run_pid_; }

  // Live processes of this job other than `baton run` itself: master, agents, workers (matched
  // by the job's directory in their command line or working directory).
  std::vector<pid_t> JobPids() const;
  std::vector<pid_t> WorkerPids() const;
  pid_t MasterPid() const;
  pid_t AgentPid(const std::string& node) const;
  // Waits until at least `n` part files are committed; false on timeout or if the run ended.
  bool WaitForCommittedParts(int n, std::chrono::seconds timeout = std::chrono::seconds(120));
  int CommittedParts() const;

  // Word totals over every committed part file.
  std::map<std::string, uint64_t> OutputCounts() const;
  std::string ReadRunLog() const;
  std::string ReadStateFile(const std::string& name) const;

 private:
  std::string dir_;
  pid_t run_pid_ = 0;
  std::map<std::string, uint64_t> expected_;
  std::string worker_bin_;
};

// `baton run SPEC` in the background, its output in `log`: the pid, or -1 if it did not start.
pid_t StartBatonRun(const std::string& spec, const std::string& log);
// Waits for a process started so: its exit code, -1 if it did not exit normally.
int WaitForExit(pid_t pid);
// SIGKILLs every live process whose command line mentions `text` (a test's temporary
// directory): what a test leaves running, whatever it did.
void KillProcessesMentioning(const std::string& text);

// Live processes (not zombies, not this one) whose command line `pred` accepts.
std::vector<pid_t> ProcessesMatching(
    const std::function<bool(pid_t, const std::vector<std::string>&)>& pred);

// True while `pid` runs (a zombie counts as gone).
bool ProcessAlive(pid_t pid);

// Polls `done` every 20 ms until it is true (true) or `timeout` passes (false).
bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout);

// Runs a command to completion, capturing stdout+stderr; returns the exit code.
int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::seconds timeout = std::chrono::seconds(60));

}  // namespace baton::testing
