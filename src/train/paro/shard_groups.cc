#include "train/paro/shard_groups.h"

#include <vector>

namespace baton::train::paro {
namespace {

std::vector<int> Range(int first, int count, int stride) {
  std::vector<int> out;
  for (int k = 0; k < count; ++k) out.push_back(first + k * stride);
  return out;
}

// Rank r's block of a world collective is its §5 chunk: block r = chunk ChunkOf(node, local).
std::vector<comm::Block> ChunkBlocks(const ShardLayout& layout) {
  std::vector<comm::Block> blocks;
  for (int r = 0; r < layout.grid.world(); ++r) {
    const int c = layout.ChunkOf(r / layout.grid.per_node, r % layout.grid.per_node);
    blocks.push_back({layout.chunk * static_cast<size_t>(c), layout.chunk});
  }
  return blocks;
}

}  // namespace

ShardGroups::ShardGroups(comm::ProcessGroup& world, Grid grid, ShardGroupsOptions options)
    : world_(world), grid_(grid), options_(std::move(options)) {}

Result<std::unique_ptr<ShardGroups>> ShardGroups::Create(comm::ProcessGroup& world, Grid grid,
                                                         ShardGroupsOptions options) {
  if (grid.nodes < 1 || grid.per_node < 1 || grid.world() != world.size()) {
    return Status::InvalidArgument("sharding grid " + std::to_string(grid.nodes) + "x" +
                                   std::to_string(grid.per_node) + " does not match " +
                                   std::to_string(world.size()) + " ranks");
  }
  std::unique_ptr<ShardGroups> g(new ShardGroups(world, grid, std::move(options)));
  g->node_ = world.rank() / grid.per_node;
  g->local_ = world.rank() % grid.per_node;
  BATON_ASSIGN_OR_RETURN(g->intra_,
                         world.NewSubgroup(Range(g->node_ * grid.per_node, grid.per_node, 1),
                                           g->options_.name + "/intra" + std::to_string(g->node_)));
  BATON_ASSIGN_OR_RETURN(
      g->inter_, world.NewSubgroup(Range(g->local_, grid.nodes, grid.per_node),
                                   g->options_.name + "/inter" + std::to_string(g->local_)));
  if (g->options_.intra_node == comm::IntraNode::kSharedMemory && grid.per_node > 1) {
    BATON_ASSIGN_OR_RETURN(g->shm_, comm::NodeShm::Create(*g->intra_, "shm"));
  }
  return g;
}

bool ShardGroups::Hierarchical(size_t bytes) const {
  return grid_.nodes >= 2 && grid_.per_node >= 2 && bytes >= options_.hierarchical_threshold_bytes;
}

Status ShardGroups::WorldReduceScatter(void* full, const ShardLayout& layout, comm::DataType type) {
  if (Hierarchical(layout.padded() * comm::ElementSize(type))) {
    BATON_RETURN_IF_ERROR(IntraReduceScatter(full, layout, type));
    return InterReduceScatter(
        static_cast<char*>(full) + layout.intra_offset() * comm::ElementSize(type), layout, type);
  }
  // The flat ring in rank order (so one hop per node crosses the slow link) with each rank's
  // block at its §5 chunk.
  return world_.ReduceScatterBlocks(full, ChunkBlocks(layout), type, comm::ReduceOp::kSum);
}

Status ShardGroups::WorldAllGather(void* full, const ShardLayout& layout, comm::DataType type) {
  if (Hierarchical(layout.padded() * comm::ElementSize(type))) {
    BATON_RETURN_IF_ERROR(InterAllGather(
        static_cast<char*>(full) + layout.intra_offset() * comm::ElementSize(type), layout, type));
    return IntraAllGather(full, layout, type);
  }
  return world_.AllGatherBlocks(full, ChunkBlocks(layout), type);
}

Status ShardGroups::WorldAllReduce(void* full, const ShardLayout& layout, comm::DataType type) {
  if (Hierarchical(layout.padded() * comm::ElementSize(type))) {
    BATON_RETURN_IF_ERROR(IntraReduceScatter(full, layout, type));
    BATON_RETURN_IF_ERROR(InterAllReduce(
        static_cast<char*>(full) + layout.intra_offset() * comm::ElementSize(type), layout, type));
    return IntraAllGather(full, layout, type);
  }
  return world_.AllReduce(full, layout.padded(), type, comm::ReduceOp::kSum);
}

comm::CallOptions ShardGroups::IntraCall() const {
  return {.timeout = std::chrono::milliseconds(0),
          .algorithm = options_.intra_node == comm::IntraNode::kDirect ? comm::Algorithm::kDirect
                                                                       : comm::Algorithm::kRing};
}

Status ShardGroups::IntraReduceScatter(void* full, const ShardLayout& layout, comm::DataType type) {
  const auto blocks = comm::Partition(layout.padded(), grid_.per_node);
  if (shm_) {
    return shm_->ReduceScatterBlocks(full, blocks, type, comm::ReduceOp::kSum,
                                     world_.options().timeout);
  }
  return intra_->ReduceScatterBlocks(full, blocks, type, comm::ReduceOp::kSum, IntraCall());
}

Status ShardGroups::IntraAllGather(void* full, const ShardLayout& layout, comm::DataType type) {
  const auto blocks = comm::Partition(layout.padded(), grid_.per_node);
  if (shm_) return shm_->AllGatherBlocks(full, blocks, type, world_.options().timeout);
  return intra_->AllGatherBlocks(full, blocks, type, IntraCall());
}

Status ShardGroups::InterReduceScatter(void* shard, const ShardLayout& layout,
                                       comm::DataType type) {
  return inter_->ReduceScatterBlocks(shard, comm::Partition(layout.intra_size(), grid_.nodes), type,
                                     comm::ReduceOp::kSum);
}

Status ShardGroups::InterAllGather(void* shard, const ShardLayout& layout, comm::DataType type) {
  return inter_->AllGatherBlocks(shard, comm::Partition(layout.intra_size(), grid_.nodes), type);
}

Status ShardGroups::InterAllReduce(void* shard, const ShardLayout& layout, comm::DataType type) {
  return inter_->AllReduce(shard, layout.intra_size(), type, comm::ReduceOp::kSum);
}

Status ShardGroups::SumScalar(double* value, Granularity k) {
  if (k == Granularity::kNone) return Status::Ok();
  comm::ProcessGroup& group = k == Granularity::kIntra ? *intra_ : world_;
  return group.AllReduce(value, 1, comm::DataType::kFloat64, comm::ReduceOp::kSum);
}

}  // namespace baton::train::paro
