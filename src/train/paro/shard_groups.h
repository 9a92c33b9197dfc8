// ShardGroups: the communicators of a PaRO-DP rank — WORLD (node-major), INTRA (this rank's node)
// and INTER (the ranks with this rank's local index) — and the collectives the strategies run on a
// layer's padded flat buffer in the §5 layout (strategy.h, ShardLayout).
//
// World collectives take one of two paths with identical results: hierarchical (INTRA then INTER,
// so the slow links carry 1/m of the bytes and every node's m inter rings run at once) when the
// grid has ≥ 2 nodes of ≥ 2 ranks and the message reaches `hierarchical_threshold_bytes`, and the
// flat world ring otherwise (with the chunks in §5 order as its blocks), because under ~1 MiB the
// extra phase's latency costs more than the slow-link bytes saved (bench/comm).
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "comm/collectives.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "comm/shm_group.h"
#include "common/status.h"
#include "train/paro/strategy.h"

namespace baton::train::paro {

struct ShardGroupsOptions {
  // Names the subgroups under the world group's prefix; each ShardGroups of one world group needs
  // its own. Default "paro".
  std::string name = "paro";
  // World collectives of at least this many bytes take the hierarchical path. Default 1 MiB, the
  // crossover bench/comm measured for HO-Ring on the emulated two-tier network.
  size_t hierarchical_threshold_bytes = size_t{1} << 20;
  // How INTRA collectives move data (as HO-Ring's, hierarchical_ring.h): kSharedMemory (default)
  // through a segment the node's ranks map, so a rank copies its data once instead of through
  // the kernel's loopback TCP, and waits on a futex instead of a transport thread (measured in
  // bench/paro: the intra-node latency of a small gather is several times lower); kDirect, one
  // exchange step over loopback sockets; kRing, baton's ring.
  comm::IntraNode intra_node = comm::IntraNode::kSharedMemory;
};

class ShardGroups {
 public:
  // Collective over `world`, whose ranks must form `grid` node-major (rank = node·m + local).
  // `world` must outlive the result.
  static Result<std::unique_ptr<ShardGroups>> Create(comm::ProcessGroup& world, Grid grid,
                                                     ShardGroupsOptions options = {});

  Grid grid() const { return grid_; }
  int node() const { return node_; }
  int local() const { return local_; }
  ShardLayout LayoutOf(size_t size) const { return ShardLayout(grid_, node_, local_, size); }
  comm::ProcessGroup& world() { return world_; }

  // All on `full`, a padded buffer of layout.padded() elements, summing (callers scale):
  // the owned chunk ends reduced over the world (other chunks hold partial sums);
  Status WorldReduceScatter(void* full, const ShardLayout& layout, comm::DataType type);
  // every chunk ends equal to its owner's;
  Status WorldAllGather(void* full, const ShardLayout& layout, comm::DataType type);
  Status WorldAllReduce(void* full, const ShardLayout& layout, comm::DataType type);
  // intra shard `local` ends reduced over this node / every intra shard equal to its owner's;
  Status IntraReduceScatter(void* full, const ShardLayout& layout, comm::DataType type);
  Status IntraAllGather(void* full, const ShardLayout& layout, comm::DataType type);
  // On `shard`, one intra shard (layout.intra_size() elements): chunk `node` ends reduced over
  // INTER_local / every chunk equal to its owner's / everything reduced.
  Status InterReduceScatter(void* shard, const ShardLayout& layout, comm::DataType type);
  Status InterAllGather(void* shard, const ShardLayout& layout, comm::DataType type);
  Status InterAllReduce(void* shard, const ShardLayout& layout, comm::DataType type);

  // Sums one value over the ranks that partition a state at `k`: nobody (N), INTRA (I) or the
  // world (G).
  Status SumScalar(double* value, Granularity k);

  // Whether a world collective of `bytes` takes the hierarchical path (same on every rank).
  bool Hierarchical(size_t bytes) const;

 private:
  ShardGroups(comm::ProcessGroup& world, Grid grid, ShardGroupsOptions options);
  comm::CallOptions IntraCall() const;

  comm::ProcessGroup& world_;
  Grid grid_;
  ShardGroupsOptions options_;
  int node_ = 0, local_ = 0;
  std::unique_ptr<comm::ProcessGroup> intra_, inter_;
  std::unique_ptr<comm::NodeShm> shm_;  // with kSharedMemory
};

}  // namespace baton::train::paro
