#include "agent/oom_watch.h"

#include <fstream>
#include <sstream>

namespace baton::agent {

std::string OwnCgroupMemoryEventsPath() {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    // The unified (v2) hierarchy is the entry with id 0 and no controller list: "0::/path".
    if (line.rfind("0::", 0) != 0) continue;
    std::string rel = line.substr(3);
    if (rel == "/") rel.clear();
    std::string path = "/sys/fs/cgroup" + rel + "/memory.events";
    if (std::ifstream(path).good()) return path;
  }
  return "";
}

OomWatch::OomWatch(std::string events_path)
    : path_(events_path.empty() ? OwnCgroupMemoryEventsPath() : std::move(events_path)) {
  // Kills that happened before the agent started are not ours to explain.
  attributed_ = ReadCount().value_or(0);
}

std::optional<int64_t> OomWatch::ReadCount() const {
  if (path_.empty()) return std::nullopt;
  std::ifstream in(path_);
  std::string key;
  int64_t value = 0;
  while (in >> key >> value) {
    if (key == "oom_kill") return value;
  }
  return std::nullopt;
}

bool OomWatch::ConsumeOomKill() {
  auto count = ReadCount();
  if (!count || *count <= attributed_) return false;
  ++attributed_;
  return true;
}

}  // namespace baton::agent
