#include "job_harness.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "agent/spawn.h"
#include "common/clock.h"

namespace fs = std::filesystem;

namespace baton::testing {
namespace {

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// NUL-separated /proc file as a vector of strings.
std::vector<std::string> ProcStrings(pid_t pid, const char* what) {
  std::string raw = ReadWhole("/proc/" + std::to_string(pid) + "/" + what);
  std::vector<std::string> out;
  size_t start = 0;
  while (start < raw.size()) {
    size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    out.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

bool IsZombie(pid_t pid) {
  std::string stat = ReadWhole("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close == std::string::npos || (close + 2 < stat.size() && stat[close + 2] == 'Z');
}

template <typename Pred>
std::vector<pid_t> FindProcesses(Pred pred) {
  std::vector<pid_t> out;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename().string();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid() || IsZombie(pid)) continue;
    std::vector<std::string> cmd = ProcStrings(pid, "cmdline");
    if (!cmd.empty() && pred(pid, cmd)) out.push_back(pid);
  }
  return out;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x.find(s) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

std::vector<pid_t> ProcessesMatching(
    const std::function<bool(pid_t, const std::vector<std::string>&)>& pred) {
  return FindProcesses(pred);
}

WordcountJob::WordcountJob(const WordcountJobOptions& o) {
  char tmpl[] = "/tmp/baton-it-XXXXXX";
  dir_ = ::mkdtemp(tmpl);
  // Words drawn from a small vocabulary with a fixed seed, so counts are large and reproducible.
  std::mt19937 rng(12345);
  std::ofstream in(dir_ + "/input.txt");
  for (int i = 0; i < o.lines; ++i) {
    int words = 1 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      std::string word = "w" + std::to_string(rng() % 500);
      ++expected_[word];
      in << (w ? " " : "") << word;
    }
    in << "\n";
  }
  in.close();
  worker_bin_ = o.worker_bin.empty() ? std::string(WORDCOUNT_BIN) : o.worker_bin;
  std::ofstream spec(spec_path());
  spec << "name: wordcount-test\n"
       << "nodes: " << o.nodes << "\n"
       << "input:\n  paths: [input.txt]\n  records_per_shard: " << o.records_per_shard << "\n"
       << "output:\n  dir: out\n  suffix: .tsv\n"
       << "worker:\n  command: [" << worker_bin_ << "]\n  per_node: " << o.workers_per_node
       << "\n  restart_backoff_ms: 100\n  stop_grace_ms: 2000\n"
       << "  env:\n    WORDCOUNT_DELAY_US_PER_RECORD: \"" << o.delay_us_per_record << "\"\n"
       << "    WORDCOUNT_SLOW_RANK: \"" << o.slow_rank << "\"\n"
       << "    WORDCOUNT_SLOW_FACTOR: \"" << o.slow_factor << "\"\n"
       << o.extra_env_yaml << "master:\n  state_dir: state\n  metrics_port: " << o.metrics_port
       << "\n"
       << "timeouts:\n  lease_ms: " << o.lease_ms << "\n  heartbeat_interval_ms: 200\n"
       << "  node_dead_ms: " << o.node_dead_ms << "\n"
       << (o.master_unreachable_ms >= 0
               ? "  master_unreachable_ms: " + std::to_string(o.master_unreachable_ms) + "\n"
               : "")
       << (o.agents_gone_ms >= 0 ? "  agents_gone_ms: " + std::to_string(o.agents_gone_ms) + "\n"
                                 : "")
       << "failure:\n  max_shard_retries: " << o.max_shard_retries << "\n"
       << o.extra_yaml;
}

WordcountJob::~WordcountJob() {
  if (run_pid_ > 0) {
    ::kill(run_pid_, SIGINT);
    int st;
    ::waitpid(run_pid_, &st, 0);
  }
  // Leave nothing running, whatever the test did.
  for (pid_t p : JobPids()) ::kill(p, SIGKILL);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

pid_t StartBatonRun(const std::string& spec, const std::string& log) {
  agent::SpawnRequest req;
  req.argv = {BATON_BIN, "run", spec};
  req.output_path = log;
  auto pid = agent::SpawnProcess(req);
  return pid.ok() ? *pid : -1;
}

int WaitForExit(pid_t pid) {
  int st = 0;
  if (pid <= 0 || ::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void KillProcessesMentioning(const std::string& text) {
  for (pid_t p : FindProcesses(
           [&](pid_t, const std::vector<std::string>& cmd) { return Contains(cmd, text); })) {
    ::kill(p, SIGKILL);
  }
}

void WordcountJob::Start() { run_pid_ = StartBatonRun(spec_path(), run_log()); }

int WordcountJob::Wait(std::chrono::seconds timeout) {
  if (run_pid_ <= 0) return -1;
  int64_t deadline = MonoMillis() + timeout.count() * 1000;
  int st = 0;
  while (MonoMillis() < deadline) {
    if (::waitpid(run_pid_, &st, WNOHANG) == run_pid_) {
      run_pid_ = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(run_pid_, SIGKILL);
  ::waitpid(run_pid_, &st, 0);
  run_pid_ = 0;
  return -1;
}

std::vector<pid_t> WordcountJob::JobPids() const {
  return FindProcesses([&](pid_t pid, const std::vector<std::string>& cmd) {
    std::error_code ec;
    auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
    return pid != run_pid_ && (Contains(cmd, dir_) || (!ec && cwd.string() == dir_));
  });
}

void WordcountJob::KillEverything() {
  std::vector<pid_t> victims = JobPids();
  if (run_pid_ > 0) victims.push_back(run_pid_);
  for (pid_t p : victims) ::kill(p, SIGKILL);
  if (run_pid_ > 0) {
    int st;
    ::waitpid(run_pid_, &st, 0);
    run_pid_ = 0;
  }
  // Wait until they are gone (the agents' children are reaped by init).
  for (int i = 0; i < 200 && !WorkerPids().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::vector<pid_t> WordcountJob::WorkerPids() const {
  return FindProcesses([&](pid_t pid, const std::vector<std::string>& cmd) {
    // Workers run in the spec's directory (worker.working_dir is the spec's base dir).
    std::error_code ec;
    auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
    return cmd[0] == worker_bin_ && !ec && cwd.string() == dir_;
  });
}

pid_t WordcountJob::MasterPid() const {
  auto v = FindProcesses([&](pid_t, const std::vector<std::string>& cmd) {
    return cmd.size() > 1 && cmd[1] == "master" && Contains(cmd, spec_path());
  });
  return v.empty() ? 0 : v[0];
}

pid_t WordcountJob::AgentPid(const std::string& node) const {
  auto v = FindProcesses([&](pid_t, const std::vector<std::string>& cmd) {
    return cmd.size() > 1 && cmd[1] == "agent" && Contains(cmd, state_dir()) &&
           std::find(cmd.begin(), cmd.end(), node) != cmd.end();
  });
  return v.empty() ? 0 : v[0];
}

int WordcountJob::CommittedParts() const {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir(), ec)) {
    if (e.path().filename().string().starts_with("part-")) ++n;
  }
  return n;
}

bool WordcountJob::WaitForCommittedParts(int n, std::chrono::seconds timeout) {
  int64_t deadline = MonoMillis() + timeout.count() * 1000;
  while (MonoMillis() < deadline) {
    if (CommittedParts() >= n) return true;
    if (run_pid_ > 0) {
      int st;
      if (::waitpid(run_pid_, &st, WNOHANG) == run_pid_) {
        run_pid_ = 0;
        return false;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::map<std::string, uint64_t> WordcountJob::OutputCounts() const {
  std::map<std::string, uint64_t> counts;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(output_dir(), ec)) {
    if (!e.path().filename().string().starts_with("part-")) continue;
    std::ifstream in(e.path());
    std::string word;
    uint64_t n;
    while (in >> word >> n) counts[word] += n;
  }
  return counts;
}

std::string WordcountJob::ReadRunLog() const { return ReadWhole(run_log()); }
std::string WordcountJob::ReadStateFile(const std::string& name) const {
  return ReadWhole(state_dir() + "/" + name);
}

bool ProcessAlive(pid_t pid) {
  return pid > 0 && fs::exists("/proc/" + std::to_string(pid)) && !IsZombie(pid);
}

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const int64_t deadline = MonoMillis() + timeout.count() * 1000;
  while (!done()) {
    if (MonoMillis() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               std::chrono::seconds timeout) {
  char tmpl[] = "/tmp/baton-cmd-XXXXXX";
  int fd = ::mkstemp(tmpl);
  ::close(fd);
  agent::SpawnRequest req;
  req.argv = argv;
  req.output_path = tmpl;
  auto pid = agent::SpawnProcess(req);
  if (!pid.ok()) return -1;
  int64_t deadline = MonoMillis() + timeout.count() * 1000;
  int st = 0, code = -1;
  while (true) {
    if (::waitpid(*pid, &st, WNOHANG) == *pid) {
      code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    if (MonoMillis() > deadline) {
      ::kill(*pid, SIGKILL);
      ::waitpid(*pid, &st, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (output) *output = ReadWhole(tmpl);
  ::unlink(tmpl);
  return code;
}

}  // namespace baton::testing
