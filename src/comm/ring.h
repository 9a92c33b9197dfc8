// baton's flat ring collectives, written over gloo's unbound buffers (point-to-point sends and
// receives on one gloo context) rather than gloo's own algorithms, so that they can run in place
// on any block layout, serve as HO-Ring's building blocks, and be pipelined.
//
// Every step moves one block to the right neighbour and receives one from the left. Blocks are cut
// into segments of at most kSegmentBytes; a segment is forwarded as soon as it has been reduced, so
// that sending, receiving and reducing overlap and a step never waits for a whole block.
//
// These functions throw gloo exceptions on transport failure or timeout; ProcessGroup converts them
// to Status at the module boundary.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/types.h"

namespace gloo {
class Context;
}

namespace baton::comm::ring {

inline constexpr size_t kSegmentBytes = 1 << 20;

struct RingCall {
  gloo::Context* context = nullptr;
  uint64_t slot = 0;  // unique per call on this context, equal on every rank
  std::chrono::steady_clock::time_point deadline;
};

// In place over `buf` split into blocks[0..size): rank r ends with block r reduced over all ranks
// (kAvg is left as a sum). The other blocks hold partial sums afterwards.
// `scratch` holds receive slots (grown as needed; callers keep it between calls).
void ReduceScatter(const RingCall& call, void* buf, const std::vector<Block>& blocks, DataType type,
                   ReduceOp op, std::vector<char>* scratch);

// Reduce-scatter then all-gather (in place, every rank ends with every block reduced; kAvg left
// as a sum), fused: the all-gather's receives are posted first and each segment of block r is
// forwarded as soon as it is complete, so there is no drain between the phases. The two calls'
// slots must differ.
void AllReduce(const RingCall& rs_call, const RingCall& ag_call, void* buf,
               const std::vector<Block>& blocks, DataType type, ReduceOp op,
               std::vector<char>* scratch);

// In place: rank r contributes block r of `buf`; afterwards every rank holds every block.
void AllGather(const RingCall& call, void* buf, const std::vector<Block>& blocks, DataType type);

}  // namespace baton::comm::ring
