#include "launch/local_run.h"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <thread>
#include <vector>

#include "agent/spawn.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/secret.h"
#include "launch/preflight.h"
#include "launch/run_lock.h"
#include "launch/status_client.h"
#include "master/master.h"
#include "spec/job_spec.h"

namespace baton::launch {
namespace {

struct Child {
  std::string name;  // "master", "node-0", ...
  std::vector<std::string> argv;
  std::string log_path;
  pid_t pid = 0;
  int restarts = 0;
  bool exited = false;
  int wait_status = 0;
};

Status Start(Child& c) {
  agent::SpawnRequest req;
  req.argv = c.argv;
  req.output_path = c.log_path;
  BATON_ASSIGN_OR_RETURN(c.pid, agent::SpawnProcess(req));
  c.exited = false;
  return Status::Ok();
}

// Reaps `c` if it exited; true when it is no longer running.
bool Reap(Child& c) {
  if (c.exited || c.pid <= 0) return true;
  int st = 0;
  pid_t r = ::waitpid(c.pid, &st, WNOHANG);
  if (r == c.pid) {
    c.exited = true;
    c.wait_status = st;
  }
  return c.exited;
}

std::string Describe(int wait_status) {
  if (WIFEXITED(wait_status)) return "exited with code " + std::to_string(WEXITSTATUS(wait_status));
  if (WIFSIGNALED(wait_status)) return "killed by signal " + std::to_string(WTERMSIG(wait_status));
  return "ended";
}

void Terminate(Child& c, std::chrono::milliseconds grace) {
  if (Reap(c)) return;
  ::kill(c.pid, SIGTERM);
  int64_t deadline = MonoMillis() + grace.count();
  while (!Reap(c) && MonoMillis() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (!Reap(c)) {
    ::kill(c.pid, SIGKILL);
    while (!Reap(c)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// Which file a path names right now (nullopt: none). A file replaced by WriteFileAtomic has a
// new inode: the old one still exists while the new one is written, so they never share one.
std::optional<std::pair<dev_t, ino_t>> FileIdentity(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return std::make_pair(st.st_dev, st.st_ino);
}

// The master's exit code when no agent was alive for timeouts.agents_gone_ms (master.h).
constexpr int kMasterAgentsGone = 4;
// `baton master` exit code when its state store failed (master.h); `baton run` then exits 4.
constexpr int kMasterStoreFailed = 5;

// "N bytes free" on the filesystem of `dir`, for messages about a full disk.
std::string FreeSpace(const std::string& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) return "free space unknown";
  return std::to_string(static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize) + " bytes free";
}

std::string LastLines(const std::string& path, size_t max_lines) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return "";
  std::vector<std::string> lines;
  size_t start = 0;
  const std::string& t = *text;
  while (start < t.size()) {
    size_t nl = t.find('\n', start);
    if (nl == std::string::npos) nl = t.size();
    lines.push_back(t.substr(start, nl - start));
    start = nl + 1;
  }
  std::string out;
  for (size_t i = lines.size() > max_lines ? lines.size() - max_lines : 0; i < lines.size(); ++i) {
    out += "    " + lines[i] + "\n";
  }
  return out;
}

class Runner {
 public:
  Runner(const LocalRunOptions& options, JobSpec spec, const std::atomic<bool>& interrupted)
      : options_(options), spec_(std::move(spec)), interrupted_(interrupted) {
    tty_ = ::isatty(STDERR_FILENO) == 1;
  }

  int Run() {
    const std::string& dir = spec_.master.state_dir;
    Status s = EnsureWritableDirectory(dir);
    if (!s.ok()) {
      std::fprintf(stderr, "baton run: state dir: %s\n", s.message().c_str());
      return 2;
    }
    // Before anything else in the state dir: a refused run must leave the running one alone.
    Result<RunLock> lock = RunLock::Acquire(dir);
    if (!lock.ok()) {
      std::fprintf(stderr, "baton run: %s\n", lock.status().message().c_str());
      return 2;
    }
    run_lock_.emplace(std::move(*lock));
    // The master of a `baton run` killed a moment ago dies with it (--supervisor-pid).
    if (Status free = WaitForNoMaster(dir, std::chrono::seconds(10)); !free.ok()) {
      std::fprintf(stderr, "baton run: %s\n", free.message().c_str());
      return 2;
    }
    Result<std::string> token = LoadOrCreateSecret(master::TokenPath(dir));
    if (!token.ok()) {
      std::fprintf(stderr, "baton run: %s\n", token.status().message().c_str());
      return 2;
    }
    token_ = *token;
    // Keep the port of an earlier run so that agents and workers started then could find us.
    int port = spec_.master.port;
    std::string addr_file = master::MasterAddrPath(dir);
    if (Result<std::string> prev = ReadFile(addr_file); prev.ok() && port == 0) {
      auto colon = prev->rfind(':');
      if (colon != std::string::npos) port = std::atoi(prev->c_str() + colon + 1);
    }

    master_.name = "master";
    const std::string self = std::to_string(::getpid());
    // Children die with this process, however it dies: none outlives its supervisor.
    master_.argv = {options_.baton_binary, "master",           "--spec", spec_.spec_path, "--port",
                    std::to_string(port),  "--supervisor-pid", self};
    master_.log_path = dir + "/master.log";
    // Nothing of an earlier run of this job is alive now (its processes died with it or were
    // stopped), so its leases can be released at once; a mid-run restart must not do this.
    master_.argv.push_back("--release-leases");
    std::fprintf(stderr, "baton run: job '%s', state %s (logs there)\n", spec_.name.c_str(),
                 dir.c_str());
    int rc = StartMaster();
    if (rc != 0) return rc;
    for (int i = 0; i < spec_.nodes + spec_.spare_nodes; ++i) {
      Child a;
      a.name = "node-" + std::to_string(i);
      a.argv = {options_.baton_binary,
                "agent",
                "--master",
                address_,
                "--node",
                a.name,
                "--token-file",
                master::TokenPath(dir),
                "--master-address-file",
                addr_file,
                "--master-unreachable-ms",
                std::to_string(spec_.timeouts.master_unreachable_ms),
                "--supervisor-pid",
                self};
      if (i >= spec_.nodes) a.argv.push_back("--spare");  // the spec's spare_nodes
      a.log_path = dir + "/" + a.name + ".log";
      if (Status st = Start(a); !st.ok()) {
        std::fprintf(stderr, "baton run: cannot start agent %s: %s\n", a.name.c_str(),
                     st.message().c_str());
        StopAll();
        return 1;
      }
      agents_.push_back(std::move(a));
    }
    return Supervise();
  }

 private:
  // Starts the master and waits until it has published its address (or died trying).
  int StartMaster() {
    // master.addr is never deleted (`baton status` reads it while a job runs): the new master's
    // address is the file once it has been replaced.
    std::string addr_file = master::MasterAddrPath(spec_.master.state_dir);
    const auto previous = FileIdentity(addr_file);
    if (Status s = Start(master_); !s.ok()) {
      std::fprintf(stderr, "baton run: cannot start master: %s\n", s.message().c_str());
      return 1;
    }
    int64_t deadline = MonoMillis() + options_.master_start_timeout_ms;
    while (MonoMillis() < deadline) {
      Result<std::string> a = ReadFile(addr_file);
      if (a.ok() && !a->empty() && FileIdentity(addr_file) != previous) {
        address_ = a->substr(0, a->find('\n'));
        // A restarted master must come back on the same port: workers know only this address.
        auto port_arg = std::find(master_.argv.begin(), master_.argv.end(), "--port") + 1;
        *port_arg = address_.substr(address_.rfind(':') + 1);
        return 0;
      }
      if (Reap(master_)) {
        int code = WIFEXITED(master_.wait_status) ? WEXITSTATUS(master_.wait_status) : 1;
        std::fprintf(stderr, "baton run: master %s before serving; its log (%s) ends with:\n%s",
                     Describe(master_.wait_status).c_str(), master_.log_path.c_str(),
                     LastLines(master_.log_path, 8).c_str());
        return code == 2 ? 2 : 1;
      }
      if (interrupted_) {
        Terminate(master_, std::chrono::seconds(5));
        return 130;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::fprintf(stderr, "baton run: master did not start within %lld ms (log: %s)\n",
                 static_cast<long long>(options_.master_start_timeout_ms),
                 master_.log_path.c_str());
    Terminate(master_, std::chrono::seconds(5));
    return 1;
  }

  void StopAll() {
    for (auto& a : agents_) {
      if (!Reap(a)) ::kill(a.pid, SIGTERM);
    }
    for (auto& a : agents_)
      Terminate(a, std::chrono::milliseconds(spec_.worker.stop_grace_ms + 2000));
    Terminate(master_, std::chrono::seconds(5));
  }

  void ShowProgress(const v1::JobStatus& st, bool final_line) {
    std::string line = "[" + spec_.name + "] " + ProgressLine(st);
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
    } else if (final_line || MonoMillis() >= next_log_ms_) {
      std::fprintf(stderr, "%s\n", line.c_str());
      next_log_ms_ = MonoMillis() + options_.progress_log_ms;
    }
    std::fflush(stderr);
  }

  // One loop: processes first, then the master's word. Every decision to end the job is taken
  // from a status the master gave *after* the processes it concerns were seen exiting, so a
  // status from before their last calls can never be mistaken for the final one.
  int Supervise() {
    while (true) {
      if (interrupted_) {
        if (tty_) std::fprintf(stderr, "\n");
        std::fprintf(stderr, "baton run: interrupted; stopping agents and master...\n");
        StopAll();
        std::fprintf(stderr,
                     "baton run: stopped. Run the same command again to resume: committed shards "
                     "are kept.\n");
        return 130;
      }
      const bool agents_left = ReapAgents();
      Result<v1::JobStatus> st = FetchStatus(address_, token_, std::chrono::milliseconds(1000));
      if (st.ok()) {
        ShowProgress(*st, false);
        if (st->state() != v1::JOB_STATE_RUNNING) return Finish(*st);
      }
      if (Reap(master_)) {
        int rc = RestartMaster();
        if (rc >= 0) return rc;
      } else if (!agents_left && st.ok() && st->shards_todo() + st->shards_doing() > 0) {
        // Every agent is gone for good (restart budgets spent), and the master, asked after they
        // were gone, still has work nobody will do. With every shard settled instead, the
        // master finalizes the job on its next monitor pass: the loop waits for its verdict.
        std::fprintf(stderr,
                     "\nbaton run: every agent has exited but the job is unfinished (%llu "
                     "shard(s) to do, %llu leased); see %s\n",
                     static_cast<unsigned long long>(st->shards_todo()),
                     static_cast<unsigned long long>(st->shards_doing()),
                     spec_.master.state_dir.c_str());
        StopAll();
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(tty_ ? 250 : 500));
    }
  }

  // Reaps the agents and restarts those that died and may be restarted; true while any runs.
  bool ReapAgents() {
    bool any = false;
    for (auto& a : agents_) {
      if (!Reap(a)) {
        any = true;
        continue;
      }
      if (WIFEXITED(a.wait_status) && WEXITSTATUS(a.wait_status) == 0) continue;  // done
      // 3: its workers spent their restart budgets; restarting the agent would renew them.
      if (WIFEXITED(a.wait_status) && WEXITSTATUS(a.wait_status) == 3) continue;
      if (a.restarts >= spec_.failure.master_restarts) continue;
      ++a.restarts;
      std::fprintf(stderr, "\nbaton run: agent %s %s; restarting it (%d/%d)\n", a.name.c_str(),
                   Describe(a.wait_status).c_str(), a.restarts, spec_.failure.master_restarts);
      if (Status s = Start(a); !s.ok()) {
        std::fprintf(stderr, "baton run: cannot restart agent %s: %s\n", a.name.c_str(),
                     s.message().c_str());
        continue;
      }
      any = true;
    }
    return any;
  }

  // The master exited while the job runs: restarts it. An exit code when `baton run` must end.
  int RestartMaster() {
    if (WIFEXITED(master_.wait_status) && WEXITSTATUS(master_.wait_status) == kMasterAgentsGone) {
      std::fprintf(stderr,
                   "\nbaton run: the master ended the job unfinished: no agent was alive for "
                   "timeouts.agents_gone_ms (%lld ms); run again to resume. Its log:\n%s",
                   static_cast<long long>(spec_.timeouts.agents_gone_ms),
                   LastLines(master_.log_path, 8).c_str());
      StopAll();
      return 1;
    }
    if (WIFEXITED(master_.wait_status) && WEXITSTATUS(master_.wait_status) == kMasterStoreFailed) {
      // The state store failed (full or broken disk): a restart would fail the same way.
      std::fprintf(stderr,
                   "\nbaton run: the master stopped: the job's state in %s cannot be written "
                   "(%s). Nothing acknowledged is lost: free space or fix the disk, then run the "
                   "same command again to resume. Its log ends with:\n%s",
                   spec_.master.state_dir.c_str(), FreeSpace(spec_.master.state_dir).c_str(),
                   LastLines(master_.log_path, 4).c_str());
      StopAll();
      return 4;
    }
    if (master_.restarts >= spec_.failure.master_restarts) {
      std::fprintf(stderr, "\nbaton run: master %s and its restart budget (%d) is spent; log:\n%s",
                   Describe(master_.wait_status).c_str(), spec_.failure.master_restarts,
                   LastLines(master_.log_path, 8).c_str());
      StopAll();
      return 1;
    }
    ++master_.restarts;
    // This time workers of the current run may still hold leases: let them commit.
    master_.argv.erase(std::remove(master_.argv.begin(), master_.argv.end(), "--release-leases"),
                       master_.argv.end());
    std::fprintf(stderr, "\nbaton run: master %s; restarting it on the same state dir (%d/%d)\n",
                 Describe(master_.wait_status).c_str(), master_.restarts,
                 spec_.failure.master_restarts);
    int rc = StartMaster();
    if (rc != 0) {
      StopAll();
      return rc;
    }
    return -1;
  }

  int Finish(const v1::JobStatus& st) {
    ShowProgress(st, true);
    // Agents stop on the master's STOP action; give them the time a graceful stop needs.
    int64_t deadline = MonoMillis() + spec_.worker.stop_grace_ms + 5000;
    for (auto& a : agents_) {
      while (!Reap(a) && MonoMillis() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Workers send their last progress as they exit; the master lingers to answer this one.
    v1::JobStatus final_status = st;
    if (Result<v1::JobStatus> last = FetchStatus(address_, token_, std::chrono::milliseconds(1000));
        last.ok()) {
      final_status = *last;
    }
    StopAll();
    std::fprintf(stderr, "%s", HumanStatus(final_status).c_str());
    switch (st.state()) {
      case v1::JOB_STATE_SUCCEEDED:
        std::fprintf(stderr, "baton run: job succeeded%s%s\n",
                     st.output_dir().empty() ? "" : "; output in ", st.output_dir().c_str());
        return 0;
      case v1::JOB_STATE_PARTIAL:
        std::fprintf(stderr,
                     "baton run: job finished PARTIAL: %llu shard(s) dead-lettered (allowed)\n",
                     static_cast<unsigned long long>(st.shards_dead()));
        return 0;
      default:
        std::fprintf(stderr,
                     "baton run: job FAILED: %llu shard(s) dead-lettered past their retry budget\n",
                     static_cast<unsigned long long>(st.shards_dead()));
        return 1;
    }
  }

  LocalRunOptions options_;
  JobSpec spec_;
  const std::atomic<bool>& interrupted_;
  std::string token_, address_;
  Child master_;
  std::vector<Child> agents_;
  std::optional<RunLock> run_lock_;  // held for the whole run
  bool tty_ = false;
  int64_t next_log_ms_ = 0;
};

}  // namespace

int RunLocalJob(const LocalRunOptions& options, const std::atomic<bool>& interrupted) {
  Result<JobSpec> spec = LoadJobSpec(options.spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 2;
  }
  if (Status s = PreflightJob(*spec); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return 2;
  }
  Runner runner(options, std::move(*spec), interrupted);
  return runner.Run();
}

}  // namespace baton::launch
