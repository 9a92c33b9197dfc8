// Collectives: the operations every algorithm over a fixed group of ranks offers, so that training
// code holds a `Collectives&` and the topology decides which implementation sits behind it:
//
//   ProcessGroup      (process_group.h)      flat: baton's ring / direct exchange / gloo; right for
//                                            one node, or one rank per node;
//   HierarchicalRing  (hierarchical_ring.h)  HO-Ring over a ProcessGroup: right for several nodes
//                                            of several ranks each (fast links inside, slow
//                                            between); it falls back to the flat ring itself where
//                                            its path does not pay (small messages, uneven nodes).
//
// Semantics are those documented on ProcessGroup: every member makes the same calls in the same
// order; buffers are raw memory of `count` elements of a DataType; errors are Status values
// (kUnavailable: a peer's connection broke, kDeadlineExceeded: nothing arrived in time); after a
// failure the group is broken and later calls fail with kFailedPrecondition. Operations beyond
// these (subgroups, in-place block forms, all-to-all, point to point) are ProcessGroup's own.
#pragma once

#include <chrono>
#include <cstddef>

#include "comm/types.h"
#include "common/status.h"

namespace baton::comm {

// Which implementation runs a collective. kAuto picks baton's ring for allreduce, reduce-scatter
// and all-gather, and gloo for the rest. kDirect (allreduce, reduce-scatter, all-gather) exchanges
// with every peer in one step (direct.h): for groups on one host, where a ring's dependent steps
// cost more than its bandwidth saves. ProcessGroup honours it; HierarchicalRing runs its own
// algorithm (HO-Ring, or the flat ring where that is not eligible) and passes it on only for
// barrier and broadcast.
enum class Algorithm { kAuto, kGloo, kRing, kDirect };

struct CallOptions {
  std::chrono::milliseconds timeout{0};  // 0: the group's default
  Algorithm algorithm = Algorithm::kAuto;
};

// Implementations repeat the `= {}` defaults: a default argument is bound by the static type, so
// every overrider states the same one and a call reads alike through either type.
class Collectives {
 public:
  virtual ~Collectives() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  virtual Status Barrier(const CallOptions& call = {}) = 0;
  // Copies `root`'s buffer into everyone's.
  virtual Status Broadcast(void* buf, size_t count, DataType type, int root,
                           const CallOptions& call = {}) = 0;
  // In place: everyone ends with op over all ranks' buffers.
  virtual Status AllReduce(void* buf, size_t count, DataType type, ReduceOp op,
                           const CallOptions& call = {}) = 0;
  // `in` holds `count` elements on every rank; rank r receives block r of Partition(count, size())
  // reduced over all ranks into `out` (which holds at least that block's count).
  virtual Status ReduceScatter(const void* in, void* out, size_t count, DataType type, ReduceOp op,
                               const CallOptions& call = {}) = 0;
  // `in` holds `count` elements; `out` (size() * count) ends with rank r's input at r * count.
  virtual Status AllGather(const void* in, void* out, size_t count, DataType type,
                           const CallOptions& call = {}) = 0;
};

}  // namespace baton::comm
