// Telling an OOM kill apart from any other SIGKILL.
//
// waitpid() reports only "killed by signal 9", whoever sent it. The kernel's OOM killer counts its
// kills in the cgroup v2 file `memory.events` (line `oom_kill N`) of the cgroup it acted in, so a
// SIGKILL death observed while that counter has grown is attributed to the OOM killer. Each
// attribution consumes one counted kill, so one OOM kill never explains two deaths.
//
// Without cgroup v2 (or without a readable memory.events) the watch is inert and every SIGKILL
// stays a plain signal death: a conservative fallback, never a false OOM report.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace baton::agent {

class OomWatch {
 public:
  // `events_path` empty: the memory.events of this process's own cgroup, found via
  // /proc/self/cgroup. Tests pass a file of their own.
  explicit OomWatch(std::string events_path = "");

  // True if the OOM kill counter grew past what earlier calls already attributed; consumes one.
  bool ConsumeOomKill();

  const std::string& events_path() const { return path_; }

 private:
  std::optional<int64_t> ReadCount() const;

  std::string path_;
  int64_t attributed_ = 0;  // counter value already explained
};

// The memory.events path of this process's cgroup v2, or "" when there is none.
std::string OwnCgroupMemoryEventsPath();

}  // namespace baton::agent
