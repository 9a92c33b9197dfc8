// Topology: which ranks share a node (fast links inside, slow links between), and the subgroups
// PaRO and HO-Ring use (paper notation: node i, local index d):
//   INTRA_i = the ranks on node i, in rank order;
//   INTER_d = the d-th rank of every node, in node order (defined when every node has d+1 ranks).
#pragma once

#include <cstdint>
#include <vector>

#include "comm/process_group.h"
#include "common/status.h"

namespace baton::comm {

class Topology {
 public:
  // node_of_rank[r] is any id naming rank r's node; nodes are numbered by first appearance.
  static Topology FromNodeIds(const std::vector<int64_t>& node_of_rank);
  // `nodes` nodes of `per_node` consecutive ranks: rank r on node r / per_node.
  static Topology Uniform(int nodes, int per_node);
  // All-gathers each rank's node id over `world` (a collective call).
  static Result<Topology> Discover(ProcessGroup& world, int64_t my_node_id);
  // This process's node id: BATON_NODE_RANK when set (the agent sets it), else a hash of the
  // host name, so that ranks on one host group together.
  static int64_t NodeIdFromEnvironment();

  int world_size() const { return static_cast<int>(node_of_.size()); }
  int num_nodes() const { return static_cast<int>(members_.size()); }
  int node_of(int rank) const { return node_of_[static_cast<size_t>(rank)]; }
  int local_index(int rank) const { return local_[static_cast<size_t>(rank)]; }
  // INTRA_node.
  const std::vector<int>& node_ranks(int node) const { return members_[static_cast<size_t>(node)]; }
  // INTER_d; empty when some node has no rank with local index d.
  std::vector<int> inter_ranks(int local_index) const;
  // Every node has the same number of ranks.
  bool uniform() const;
  int ranks_per_node() const { return members_.empty() ? 0 : static_cast<int>(members_[0].size()); }

 private:
  std::vector<int> node_of_;
  std::vector<int> local_;
  std::vector<std::vector<int>> members_;
};

}  // namespace baton::comm
