// Starts the ranks of a multi-process test as separate processes (posix_spawn, so the test
// process's own threads never fork) and waits for them with a hang guard.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace baton::comm::testing {

// A fresh directory for a FileStore, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/baton-comm-test-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline pid_t Spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  if (::posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
  return pid;
}

// Starts `size` workers: argv + {--rank r --size size}.
inline std::vector<pid_t> SpawnRanks(std::vector<std::string> argv, int size) {
  std::vector<pid_t> pids;
  for (int r = 0; r < size; ++r) {
    auto a = argv;
    a.insert(a.end(), {"--rank", std::to_string(r), "--size", std::to_string(size)});
    pids.push_back(Spawn(a));
  }
  return pids;
}

// Exit code of each pid (128 + signal if killed). A worker still running at the hang guard is
// SIGKILLed and reported as -1: that is a hang, the bug these tests exist to catch.
inline std::vector<int> WaitAll(const std::vector<pid_t>& pids, std::chrono::seconds guard) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  std::vector<int> codes(pids.size(), -2);
  size_t done = 0;
  while (done < pids.size()) {
    for (size_t i = 0; i < pids.size(); ++i) {
      if (codes[i] != -2 || pids[i] <= 0) {
        if (codes[i] == -2) codes[i] = -3, ++done;  // never started
        continue;
      }
      int status = 0;
      if (::waitpid(pids[i], &status, WNOHANG) == pids[i]) {
        codes[i] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ++done;
      }
    }
    if (done == pids.size()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (size_t i = 0; i < pids.size(); ++i) {
        if (codes[i] == -2) {
          ::kill(pids[i], SIGKILL);
          ::waitpid(pids[i], nullptr, 0);
          codes[i] = -1;
        }
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return codes;
}

}  // namespace baton::comm::testing
