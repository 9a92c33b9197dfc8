// Direct (all-to-all) reduce-scatter and all-gather: every rank exchanges with every other rank in
// one step instead of the ring's size-1 dependent steps. Same bytes per rank as the ring, but a
// collective completes after one round of transfers, which is what a link with plenty of bandwidth
// and costly hand-offs wants: ranks of one node over loopback, where every ring step costs a
// wake-up of the next process (HO-Ring's intra-node phases use it; see hierarchical_ring.h).
// Over a shared slow link it would be worse: all ranks send at once and nothing is pipelined.
//
// Each block is reduced by its owner in a fixed order (its own data, then rank+1, rank+2, ...), so
// results do not depend on arrival order. Like ring.h, these throw gloo exceptions on transport
// failure or timeout; ProcessGroup converts them to Status.
#pragma once

#include <vector>

#include "comm/ring.h"
#include "comm/types.h"

namespace baton::comm::direct {

// In place over `buf` split into blocks[0..size): rank r ends with block r reduced over all ranks
// (kAvg is left as a sum); other blocks are left as they were. `scratch` holds the peers' copies of
// block r (grown as needed; callers keep it between calls to avoid fresh page faults).
void ReduceScatter(const ring::RingCall& call, void* buf, const std::vector<Block>& blocks,
                   DataType type, ReduceOp op, std::vector<char>* scratch);

// In place: rank r contributes block r of `buf`; afterwards every rank holds every block.
void AllGather(const ring::RingCall& call, void* buf, const std::vector<Block>& blocks,
               DataType type);

}  // namespace baton::comm::direct
