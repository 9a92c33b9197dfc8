#include "comm/hierarchical_ring.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
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
  return h;
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
    s = intra_->ReduceScatterBlocks(base, blocks, type, inner, call);
    if (s.ok()) {
      s = inter_->AllReduce(base + mine.offset * ElementSize(type), mine.count, type, inner,
                            {call.timeout, Algorithm::kRing});
    }
    if (s.ok()) s = intra_->AllGatherBlocks(base, blocks, type, call);
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
    return intra_->ReduceScatterBlocks(base + range(c).offset * esize, layout(c), type, op, call);
  };
  auto ag = [&](size_t c) {
    if (!await(allreduced, c)) return Status::Ok();  // the inter stage reported the error
    return intra_->AllGatherBlocks(base + range(c).offset * esize, layout(c), type, call);
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
  const int m = intra_->size();
  const int g = inter_->size();
  // Pack so that super-block d (contiguous) holds the world blocks of INTER_d in node order.
  if (packed_.size() < count * esize) packed_.resize(count * esize);
  char* packed = packed_.data();
  std::vector<Block> packed_blocks;  // world block order[k] lives at packed_blocks[k]
  size_t off = 0;
  for (int w : order) {
    const Block& b = world_blocks[static_cast<size_t>(w)];
    std::memcpy(packed + off * esize, static_cast<const char*>(in) + b.offset * esize,
                b.count * esize);
    packed_blocks.push_back({off, b.count});
    off += b.count;
  }
  std::vector<Block> super(static_cast<size_t>(m));
  for (int d = 0; d < m; ++d) {
    const Block& first = packed_blocks[static_cast<size_t>(d * g)];
    const Block& last = packed_blocks[static_cast<size_t>(d * g + g - 1)];
    super[static_cast<size_t>(d)] = {first.offset, last.offset + last.count - first.offset};
  }
  BATON_RETURN_IF_ERROR(intra_->ReduceScatterBlocks(packed, super, type, inner, call));
  const int d = intra_->rank();
  const Block& mine = super[static_cast<size_t>(d)];
  std::vector<Block> sub;
  for (int i = 0; i < g; ++i) {
    Block b = packed_blocks[static_cast<size_t>(d * g + i)];
    b.offset -= mine.offset;
    sub.push_back(b);
  }
  char* super_base = packed + mine.offset * esize;
  BATON_RETURN_IF_ERROR(inter_->ReduceScatterBlocks(super_base, sub, type, inner, call));
  const Block& result = sub[static_cast<size_t>(inter_->rank())];
  std::memcpy(out, super_base + result.offset * esize, result.count * esize);
  if (op == ReduceOp::kAvg) DivideBy(out, result.count, type, world_.size());
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
  // Packed layout: position k = d * g + i holds the input of world rank order[k]. All blocks have
  // `count` elements, so super-block d is the contiguous run [d*g*count, (d+1)*g*count).
  const auto order = PackedOrder();
  const int m = intra_->size();
  const int g = inter_->size();
  const int d = intra_->rank();
  const int i = inter_->rank();
  if (packed_.size() < total * esize) packed_.resize(total * esize);
  char* packed = packed_.data();
  const size_t super_count = static_cast<size_t>(g) * count;
  char* super_base = packed + static_cast<size_t>(d) * super_count * esize;
  std::memcpy(super_base + static_cast<size_t>(i) * count * esize, in, count * esize);
  BATON_RETURN_IF_ERROR(inter_->AllGatherInPlace(super_base, super_count, type, call));
  BATON_RETURN_IF_ERROR(intra_->AllGatherInPlace(packed, total, type, call));
  (void)m;
  for (size_t k = 0; k < order.size(); ++k) {
    std::memcpy(static_cast<char*>(out) + static_cast<size_t>(order[k]) * count * esize,
                packed + k * count * esize, count * esize);
  }
  return Status::Ok();
}

}  // namespace baton::comm
