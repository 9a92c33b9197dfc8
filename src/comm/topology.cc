#include "comm/topology.h"

#include <unistd.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <string>

#include "common/worker_env.h"

namespace baton::comm {

Topology Topology::FromNodeIds(const std::vector<int64_t>& node_of_rank) {
  Topology t;
  std::map<int64_t, int> index;
  for (size_t r = 0; r < node_of_rank.size(); ++r) {
    auto [it, added] = index.emplace(node_of_rank[r], static_cast<int>(t.members_.size()));
    if (added) t.members_.emplace_back();
    auto& members = t.members_[static_cast<size_t>(it->second)];
    t.node_of_.push_back(it->second);
    t.local_.push_back(static_cast<int>(members.size()));
    members.push_back(static_cast<int>(r));
  }
  return t;
}

Topology Topology::Uniform(int nodes, int per_node) {
  std::vector<int64_t> ids;
  for (int r = 0; r < nodes * per_node; ++r) ids.push_back(r / per_node);
  return FromNodeIds(ids);
}

Result<Topology> Topology::Discover(ProcessGroup& world, int64_t my_node_id) {
  std::vector<int64_t> ids(static_cast<size_t>(world.size()));
  BATON_RETURN_IF_ERROR(world.AllGather(&my_node_id, ids.data(), 1, DataType::kInt64));
  return FromNodeIds(ids);
}

int64_t Topology::NodeIdFromEnvironment() {
  if (const char* v = std::getenv(env::kNodeRank); v != nullptr && *v != '\0') {
    return std::strtoll(v, nullptr, 10);
  }
  char host[256] = {};
  ::gethostname(host, sizeof(host) - 1);
  return static_cast<int64_t>(std::hash<std::string>()(host) >> 1);
}

std::vector<int> Topology::inter_ranks(int local_index) const {
  std::vector<int> out;
  for (const auto& members : members_) {
    if (local_index >= static_cast<int>(members.size())) return {};
    out.push_back(members[static_cast<size_t>(local_index)]);
  }
  return out;
}

bool Topology::uniform() const {
  for (const auto& members : members_) {
    if (members.size() != members_[0].size()) return false;
  }
  return true;
}

}  // namespace baton::comm
