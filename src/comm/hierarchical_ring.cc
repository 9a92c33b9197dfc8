#include "comm/hierarchical_ring.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "comm/reduce.h"

namespace baton::comm {

HierarchicalRing::HierarchicalRing(ProcessGroup& world, Topology topology,
                                   HierarchicalOptions options)
    : world_(world), topology_(std::move(topology)), options_(options) {}
HierarchicalRing::~HierarchicalRing() = default;

Result<std::unique_ptr<HierarchicalRing>> HierarchicalRing::Create(ProcessGroup& world,
                                                                   Topology topology,
                                                                   HierarchicalOptions options) {
  if (topology.world_size() != world.size()) {
    return Status::InvalidArgument("HierarchicalRing: topology has " +
                                   std::to_string(topology.world_size()) + " ranks, group has " +
                                   std::to_string(world.size()));
  }
  std::unique_ptr<HierarchicalRing> h(new HierarchicalRing(world, std::move(topology), options));
  const Topology& t = h->topology_;
  if (t.num_nodes() < 2 || !t.uniform() || t.ranks_per_node() < 2) return h;  // flat only
  const int me = world.rank();
  const int node = t.node_of(me);
  const int local = t.local_index(me);
  BATON_ASSIGN_OR_RETURN(
      h->intra_,
      world.NewSubgroup(t.node_ranks(node), options.name + "/intra" + std::to_string(node)));
  BATON_ASSIGN_OR_RETURN(
      h->inter_,
      world.NewSubgroup(t.inter_ranks(local), options.name + "/inter" + std::to_string(local)));
  if (options.intra_node == IntraNode::kSharedMemory) {
    BATON_ASSIGN_OR_RETURN(h->shm_, NodeShm::Create(*h->intra_, "shm", options.shm_slot_bytes));
  }
  return h;
}

Status HierarchicalRing::IntraReduceScatter(void* buf, const std::vector<Block>& blocks,
                                            DataType type, ReduceOp op, const CallOptions& call) {
  if (shm_ != nullptr) {
    return shm_->ReduceScatterBlocks(buf, blocks, type, op, IntraTimeout(call));
  }
  return intra_->ReduceScatterBlocks(buf, blocks, type, op, {call.timeout, IntraAlgorithm()});
}

Status HierarchicalRing::IntraAllGather(void* buf, const std::vector<Block>& blocks, DataType type,
                                        const CallOptions& call) {
  if (shm_ != nullptr) return shm_->AllGatherBlocks(buf, blocks, type, IntraTimeout(call));
  return intra_->AllGatherBlocks(buf, blocks, type, {call.timeout, IntraAlgorithm()});
}

std::chrono::milliseconds HierarchicalRing::IntraTimeout(const CallOptions& call) const {
  return call.timeout.count() > 0 ? call.timeout : intra_->options().timeout;
}

Algorithm HierarchicalRing::IntraAlgorithm() const {
  return options_.intra_node == IntraNode::kRing ? Algorithm::kRing : Algorithm::kDirect;
}

bool HierarchicalRing::Eligible(size_t bytes) const {
  return intra_ != nullptr && bytes >= options_.threshold_bytes;
}

std::vector<int> HierarchicalRing::PackedOrder() const {
  std::vector<int> order;
  for (int d = 0; d < topology_.ranks_per_node(); ++d) {
    for (int r : topology_.inter_ranks(d)) order.push_back(r);
  }
  return order;
}

Status HierarchicalRing::AllReduce(void* buf, size_t count, DataType type, ReduceOp op,
                                   const CallOptions& call) {
  const size_t bytes = count * ElementSize(type);
  if (!Eligible(bytes)) {
    CallOptions flat = call;
    flat.algorithm = Algorithm::kRing;
    return world_.AllReduce(buf, count, type, op, flat);
  }
  // Sub-steps sum (max/min pass through); the world average divides once at the end.
  const ReduceOp inner = op == ReduceOp::kAvg ? ReduceOp::kSum : op;
  char* base = static_cast<char*>(buf);
  Status s;
  if (options_.pipeline_chunk_bytes == 0) {
    const auto blocks = Partition(count, intra_->size());
    const Block mine = blocks[static_cast<size_t>(intra_->rank())];
    s = IntraReduceScatter(base, blocks, type, inner, call);
    if (s.ok()) {
      s = inter_->AllReduce(base + mine.offset * ElementSize(type), mine.count, type, inner,
                            {call.timeout, Algorithm::kRing});
    }
    if (s.ok()) s = IntraAllGather(base, blocks, type, call);
  } else {
    s = PipelinedAllReduce(base, count, type, inner, call);
  }
  if (s.ok() && op == ReduceOp::kAvg) DivideBy(buf, count, type, world_.size());
  return s;
}

Status HierarchicalRing::PipelinedAllReduce(char* base, size_t count, DataType type, ReduceOp op,
                                            const CallOptions& call) {
  const size_t esize = ElementSize(type);
  const size_t chunk = std::max<size_t>(1, options_.pipeline_chunk_bytes / esize);
  const size_t chunks = (count + chunk - 1) / chunk;
  auto range = [&](size_t c) { return Block{c * chunk, std::min(chunk, count - c * chunk)}; };
  auto layout = [&](size_t c) { return Partition(range(c).count, intra_->size()); };

  // Progress shared by the two stages; `failed` stops both.
  std::mutex mu;
  std::condition_variable cv;
  size_t reduced = 0;     // chunks whose intra reduce-scatter finished
  size_t allreduced = 0;  // chunks whose inter allreduce finished
  Status failed;
  auto fail = [&](Status s) {
    std::lock_guard<std::mutex> lock(mu);
    if (failed.ok()) failed = std::move(s);
    cv.notify_all();
  };
  // Waits until counter > c; false if the other stage failed.
  auto await = [&](const size_t& counter, size_t c) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return counter > c || !failed.ok(); });
    return failed.ok();
  };
  auto advance = [&](size_t& counter) {
    std::lock_guard<std::mutex> lock(mu);
    ++counter;
    cv.notify_all();
  };

  // Inter-node stage: allreduce this rank's block of each chunk as soon as it is reduced locally.
  std::thread inter_stage([&] {
    for (size_t c = 0; c < chunks; ++c) {
      if (!await(reduced, c)) return;
      const Block mine = layout(c)[static_cast<size_t>(intra_->rank())];
      Status s = inter_->AllReduce(base + (range(c).offset + mine.offset) * esize, mine.count, type,
                                   op, {call.timeout, Algorithm::kRing});
      if (!s.ok()) return fail(s);
      advance(allreduced);
    }
  });
  // Intra-node stage, on this thread: RS(0), then RS(c) and AG(c-1) alternately, then AG(last).
  auto rs = [&](size_t c) {
    return IntraReduceScatter(base + range(c).offset * esize, layout(c), type, op, call);
  };
  auto ag = [&](size_t c) {
    if (!await(allreduced, c)) return Status::Ok();  // the inter stage reported the error
    return IntraAllGather(base + range(c).offset * esize, layout(c), type, call);
  };
  for (size_t c = 0; c <= chunks; ++c) {
    Status s;
    if (c < chunks) {
      s = rs(c);
      if (s.ok()) advance(reduced);
    }
    if (s.ok() && c > 0) s = ag(c - 1);
    if (!s.ok()) {
      fail(s);
      break;
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!failed.ok()) break;
  }
  inter_stage.join();
  return failed;
}

size_t HierarchicalRing::Chunks(size_t bytes) const {
  if (options_.pipeline_chunk_bytes == 0) return 1;
  return std::max<size_t>(
      1, (bytes + options_.pipeline_chunk_bytes - 1) / options_.pipeline_chunk_bytes);
}

Status HierarchicalRing::RunTwoStages(size_t chunks, const std::function<Status(size_t)>& first,
                                      const std::function<Status(size_t)>& second) {
  if (chunks == 1) {
    BATON_RETURN_IF_ERROR(first(0));
    return second(0);
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t firsts_done = 0;
  Status failed;
  std::thread helper([&] {
    for (size_t c = 0; c < chunks; ++c) {
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return firsts_done > c || !failed.ok(); });
        if (!failed.ok()) return;
      }
      Status s = second(c);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (failed.ok()) failed = std::move(s);
        cv.notify_all();
        return;
      }
    }
  });
  for (size_t c = 0; c < chunks; ++c) {
    Status s = first(c);
    std::lock_guard<std::mutex> lock(mu);
    if (!s.ok() && failed.ok()) failed = std::move(s);
    if (!failed.ok()) break;
    ++firsts_done;
    cv.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    cv.notify_all();
  }
  helper.join();
  return failed;
}

Status HierarchicalRing::ReduceScatter(const void* in, void* out, size_t count, DataType type,
                                       ReduceOp op, const CallOptions& call) {
  const size_t esize = ElementSize(type);
  if (!Eligible(count * esize)) {
    CallOptions flat = call;
    flat.algorithm = Algorithm::kRing;
    return world_.ReduceScatter(in, out, count, type, op, flat);
  }
  const ReduceOp inner = op == ReduceOp::kAvg ? ReduceOp::kSum : op;
  const auto world_blocks = Partition(count, world_.size());
  const auto order = PackedOrder();
  const int g = inter_->size();
  const int d = intra_->rank();
  const size_t n = order.size();
  const size_t chunks = Chunks(count * esize);
  // Chunk-major packing: chunk c holds slice c of every world block, in PackedOrder, so that
  // within a chunk super-block d (contiguous) lists the slices of INTER_d's blocks in node order.
  struct ChunkLayout {
    size_t offset = 0;         // in the packed buffer, elements
    std::vector<Block> super;  // m super-blocks, relative to the chunk
    std::vector<Block> sub;    // g blocks of super-block d, relative to it
    Block result;              // where this rank's slice goes in `out`
  };
  std::vector<ChunkLayout> layout(chunks);
  if (packed_.size() < count * esize) packed_.resize(count * esize);
  char* packed = packed_.data();
  size_t off = 0;
  for (size_t c = 0; c < chunks; ++c) {
    ChunkLayout& l = layout[c];
    l.offset = off;
    std::vector<Block> slices(n);
    for (size_t k = 0; k < n; ++k) {
      const Block& b = world_blocks[static_cast<size_t>(order[k])];
      const Block slice = Partition(b.count, static_cast<int>(chunks))[c];
      std::memcpy(packed + off * esize,
                  static_cast<const char*>(in) + (b.offset + slice.offset) * esize,
                  slice.count * esize);
      slices[k] = {off - l.offset, slice.count};
      if (order[k] == world_.rank()) l.result = {slice.offset, slice.count};
      off += slice.count;
    }
    for (size_t s = 0; s < static_cast<size_t>(intra_->size()); ++s) {
      const Block& first = slices[s * g];
      const Block& last = slices[s * g + g - 1];
      l.super.push_back({first.offset, last.offset + last.count - first.offset});
    }
    const Block& mine = l.super[static_cast<size_t>(d)];
    for (int i = 0; i < g; ++i) {
      Block b = slices[static_cast<size_t>(d * g + i)];
      b.offset -= mine.offset;
      l.sub.push_back(b);
    }
  }
  const CallOptions inter_call{call.timeout, Algorithm::kRing};
  BATON_RETURN_IF_ERROR(RunTwoStages(
      chunks,
      [&](size_t c) {
        return IntraReduceScatter(packed + layout[c].offset * esize, layout[c].super, type, inner,
                                  call);
      },
      [&](size_t c) {
        const ChunkLayout& l = layout[c];
        char* super_base = packed + (l.offset + l.super[static_cast<size_t>(d)].offset) * esize;
        BATON_RETURN_IF_ERROR(
            inter_->ReduceScatterBlocks(super_base, l.sub, type, inner, inter_call));
        const Block& got = l.sub[static_cast<size_t>(inter_->rank())];
        std::memcpy(static_cast<char*>(out) + l.result.offset * esize,
                    super_base + got.offset * esize, got.count * esize);
        return Status::Ok();
      }));
  const Block& mine = world_blocks[static_cast<size_t>(world_.rank())];
  if (op == ReduceOp::kAvg) DivideBy(out, mine.count, type, world_.size());
  return Status::Ok();
}

Status HierarchicalRing::AllGather(const void* in, void* out, size_t count, DataType type,
                                   const CallOptions& call) {
  const size_t esize = ElementSize(type);
  const size_t total = count * static_cast<size_t>(world_.size());
  if (!Eligible(total * esize)) {
    CallOptions flat = call;
    flat.algorithm = Algorithm::kRing;
    return world_.AllGather(in, out, count, type, flat);
  }
  // Chunk-major packing: chunk c holds slice c of every rank's input at position k = d * g + i
  // (PackedOrder), so that super-block d of a chunk is the contiguous run of INTER_d's slices.
  const auto order = PackedOrder();
  const size_t n = order.size();
  const size_t g = static_cast<size_t>(inter_->size());
  const size_t d = static_cast<size_t>(intra_->rank());
  const size_t i = static_cast<size_t>(inter_->rank());
  const size_t chunks = Chunks(total * esize);
  const auto slices = Partition(count, static_cast<int>(chunks));
  if (packed_.size() < total * esize) packed_.resize(total * esize);
  char* packed = packed_.data();
  auto chunk_base = [&](size_t c) { return packed + n * slices[c].offset * esize; };
  const CallOptions inter_call{call.timeout, Algorithm::kRing};
  return RunTwoStages(
      chunks,
      [&](size_t c) {
        const size_t len = slices[c].count;
        char* super_base = chunk_base(c) + d * g * len * esize;
        std::memcpy(super_base + i * len * esize,
                    static_cast<const char*>(in) + slices[c].offset * esize, len * esize);
        return inter_->AllGatherInPlace(super_base, g * len, type, inter_call);
      },
      [&](size_t c) {
        const size_t len = slices[c].count;
        BATON_RETURN_IF_ERROR(
            IntraAllGather(chunk_base(c), Partition(n * len, intra_->size()), type, call));
        for (size_t k = 0; k < n; ++k) {
          std::memcpy(static_cast<char*>(out) +
                          (static_cast<size_t>(order[k]) * count + slices[c].offset) * esize,
                      chunk_base(c) + k * len * esize, len * esize);
        }
        return Status::Ok();
      });
}

}  // namespace baton::comm
