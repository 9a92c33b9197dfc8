#include "comm/ring.h"

#include <gloo/common/error.h>
#include <gloo/context.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <memory>

#include "comm/reduce.h"
#include "comm/unbound_wait.h"

namespace baton::comm::ring {
namespace {

using transfer::WaitRecv;
using transfer::WaitSends;

using Clock = std::chrono::steady_clock;

// One unit of the ring's stream: segment `seg` of the block handled at step `step`.
struct Unit {
  int step;
  Block region;  // elements of buf
};

int Mod(int a, int n) { return ((a % n) + n) % n; }

// Segment `j` of `nseg` of block b.
Block Segment(const Block& b, int nseg, int j) {
  auto parts = Partition(b.count, nseg);
  return {b.offset + parts[static_cast<size_t>(j)].offset, parts[static_cast<size_t>(j)].count};
}

// One segment per block up to kSegmentBytes, as gloo's ring. Cutting blocks of 128 KiB-1 MiB in
// two (so a block's reduction overlaps its next segment's transfer) measured slower everywhere
// here: every extra message costs a wake-up on ranks that share cores, and on 1 Gbit/s links the
// reduction is short next to the transfer. 1 MiB allreduce on 8 loopback ranks: 7.6-10.5 ms with
// one segment, 17-18 ms with two; 4 MiB: 19-21 ms against 27-32 ms.
int SegmentsPerBlock(const std::vector<Block>& blocks, size_t esize) {
  const size_t bytes = LargestCount(blocks) * esize;
  return static_cast<int>(std::max<size_t>(1, (bytes + kSegmentBytes - 1) / kSegmentBytes));
}

}  // namespace

namespace {

// The ring reduce-scatter; with `ag` (allreduce), fused with the all-gather that follows: the
// all-gather's receives are posted up front (gloo sends a payload only once the receiver has
// asked for it) and each segment of block r leaves for the right neighbour the moment it is
// complete, so the second phase starts without waiting for the first to drain.
void RingReduceScatter(const RingCall& call, void* buf, const std::vector<Block>& blocks,
                       DataType type, ReduceOp op, std::vector<char>* scratch, const RingCall* ag) {
  const auto [context, p, r, esize, total] = transfer::ShapeOf(call, blocks, type);
  if (p == 1 || total == 0) return;
  gloo::Context& ctx = *context;
  const int right = Mod(r + 1, p);
  const int left = Mod(r - 1, p);
  const int nseg = SegmentsPerBlock(blocks, esize);
  char* base = static_cast<char*>(buf);

  // Step s sends block r-s-1 and receives block r-s-2, reducing it; what arrives at step s leaves
  // at step s+1, so the last step (p-2) leaves block r complete here.
  std::vector<Unit> recvs;
  for (int s = 0; s <= p - 2; ++s) {
    for (int j = 0; j < nseg; ++j) {
      Block seg = Segment(blocks[static_cast<size_t>(Mod(r - s - 2, p))], nseg, j);
      if (seg.count > 0) recvs.push_back({s, seg});
    }
  }
  // All-gather: step s receives block r-s-1 in place and forwards it at step s+1. Writing into a
  // block this rank sent during reduce-scatter is safe: its final value can only arrive after the
  // right neighbour has received what this rank sent from there.
  std::vector<Unit> ag_recvs;
  if (ag != nullptr) {
    for (int s = 0; s <= p - 2; ++s) {
      for (int j = 0; j < nseg; ++j) {
        Block seg = Segment(blocks[static_cast<size_t>(Mod(r - s - 1, p))], nseg, j);
        if (seg.count > 0) ag_recvs.push_back({s, seg});
      }
    }
  }
  size_t seg_cap = 0;
  for (const auto& u : recvs) seg_cap = std::max(seg_cap, u.region.count * esize);
  constexpr size_t kWindow = 4;  // receives in flight; bounds the scratch memory
  const size_t window = std::min(kWindow, recvs.size());
  if (scratch->size() < window * seg_cap) scratch->resize(window * seg_cap);
  auto data = ctx.createUnboundBuffer(base, total * esize);
  auto tmp = ctx.createUnboundBuffer(scratch->data(), std::max<size_t>(window * seg_cap, 1));

  // Only the first all-gather receives are posted up front: posting all of them (192 for a
  // 256 MiB allreduce on 4 ranks) made large allreduces ~10% slower on the shaped link.
  constexpr size_t kAgWindow = 8;
  const size_t ag_window = std::min(kAgWindow, ag_recvs.size());
  auto post_ag_recv = [&](size_t k) {
    const Unit& u = ag_recvs[k];
    data->recv(left, ag->slot, u.region.offset * esize, u.region.count * esize);
  };
  for (size_t k = 0; k < ag_window; ++k) post_ag_recv(k);
  int sends = 0;
  for (int j = 0; j < nseg; ++j) {
    Block seg = Segment(blocks[static_cast<size_t>(Mod(r - 1, p))], nseg, j);
    if (seg.count == 0) continue;
    data->send(right, call.slot, seg.offset * esize, seg.count * esize);
    ++sends;
  }
  for (size_t k = 0; k < window; ++k) {
    tmp->recv(left, call.slot, k * seg_cap, recvs[k].region.count * esize);
  }
  for (size_t k = 0; k < recvs.size(); ++k) {
    WaitRecv(*tmp, call, "ring");
    const Unit& u = recvs[k];
    const size_t slot_off = (k % window) * seg_cap;
    ReduceInto(base + u.region.offset * esize, scratch->data() + slot_off, u.region.count, type,
               op);
    if (u.step + 1 <= p - 2) {
      data->send(right, call.slot, u.region.offset * esize, u.region.count * esize);
      ++sends;
    } else if (ag != nullptr) {  // a segment of block r is complete: all-gather step 0
      data->send(right, ag->slot, u.region.offset * esize, u.region.count * esize);
      ++sends;
    }
    if (k + window < recvs.size()) {
      tmp->recv(left, call.slot, slot_off, recvs[k + window].region.count * esize);
    }
  }
  for (size_t k = 0; k < ag_recvs.size(); ++k) {
    WaitRecv(*data, *ag, "ring");
    if (k + ag_window < ag_recvs.size()) post_ag_recv(k + ag_window);
    const Unit& u = ag_recvs[k];
    if (u.step + 1 <= p - 2) {
      data->send(right, ag->slot, u.region.offset * esize, u.region.count * esize);
      ++sends;
    }
  }
  WaitSends(*data, sends, ag != nullptr ? *ag : call, "ring");
}

}  // namespace

void ReduceScatter(const RingCall& call, void* buf, const std::vector<Block>& blocks, DataType type,
                   ReduceOp op, std::vector<char>* scratch) {
  RingReduceScatter(call, buf, blocks, type, op, scratch, nullptr);
}

void AllReduce(const RingCall& rs_call, const RingCall& ag_call, void* buf,
               const std::vector<Block>& blocks, DataType type, ReduceOp op,
               std::vector<char>* scratch) {
  RingReduceScatter(rs_call, buf, blocks, type, op, scratch, &ag_call);
}

void AllGather(const RingCall& call, void* buf, const std::vector<Block>& blocks, DataType type) {
  const auto [context, p, r, esize, total] = transfer::ShapeOf(call, blocks, type);
  if (p == 1 || total == 0) return;
  gloo::Context& ctx = *context;
  const int right = Mod(r + 1, p);
  const int left = Mod(r - 1, p);
  const int nseg = SegmentsPerBlock(blocks, esize);
  auto data = ctx.createUnboundBuffer(buf, total * esize);

  // Step s sends block r-s and receives block r-s-1 straight into place; it leaves at step s+1.
  std::vector<Unit> recvs;
  for (int s = 0; s <= p - 2; ++s) {
    for (int j = 0; j < nseg; ++j) {
      Block seg = Segment(blocks[static_cast<size_t>(Mod(r - s - 1, p))], nseg, j);
      if (seg.count > 0) recvs.push_back({s, seg});
    }
  }
  for (const auto& u : recvs) {
    data->recv(left, call.slot, u.region.offset * esize, u.region.count * esize);
  }
  int sends = 0;
  for (int j = 0; j < nseg; ++j) {
    Block seg = Segment(blocks[static_cast<size_t>(r)], nseg, j);
    if (seg.count == 0) continue;
    data->send(right, call.slot, seg.offset * esize, seg.count * esize);
    ++sends;
  }
  for (const auto& u : recvs) {
    WaitRecv(*data, call, "ring");
    if (u.step + 1 <= p - 2) {
      data->send(right, call.slot, u.region.offset * esize, u.region.count * esize);
      ++sends;
    }
  }
  WaitSends(*data, sends, call, "ring");
}

}  // namespace baton::comm::ring
