// NodeShm: reduce-scatter and all-gather among the ranks of one host through a shared-memory
// segment instead of sockets. HO-Ring's intra-node phases use it by default (hierarchical_ring.h).
//
// Over loopback TCP every byte a rank exchanges is copied twice by the kernel and every transfer
// costs wake-ups of the peer's transport thread; here a rank writes its data into the segment once,
// the ranks meet at a barrier, and each reads what it needs straight from the others' slots. The
// barrier is a counter in the segment; waiters sleep on a futex (ranks often outnumber cores).
//
// Segment: a header (barrier, member pids) and two halves of `size` slots of `slot_bytes` each.
// Data moves in rounds of at most slot_bytes per rank; round t uses half t % 2, so one barrier per
// round suffices (a rank writes half h again only after every rank has passed the next barrier,
// i.e. finished reading it). The round counter runs on across calls for the same reason.
//
// Formation: local rank 0 creates the segment under a name derived from the group's prefix, the
// others open it after a barrier on `group`, and it is unlinked once all have mapped it, so nothing
// is left in /dev/shm after a crash. Ranks that do not share /dev/shm (a wrong topology) fail to
// form with kFailedPrecondition.
//
// Failures: a wait is bounded by the call's timeout (kDeadlineExceeded); a member that died (its
// pid is gone or a zombie; members in another pid namespace are left to the timeout) is noticed
// within ~50 ms (kUnavailable). After any failure the object is
// broken and later calls fail at once, as ProcessGroup does. One call at a time per object.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "comm/process_group.h"
#include "comm/types.h"
#include "common/status.h"

namespace baton::comm {

class NodeShm {
 public:
  // Collective over `group`, whose members must all run on this host. `name` must be unique among
  // the NodeShm objects made from `group`.
  static Result<std::unique_ptr<NodeShm>> Create(ProcessGroup& group, const std::string& name,
                                                 size_t slot_bytes = 4 << 20);
  ~NodeShm();
  NodeShm(const NodeShm&) = delete;
  NodeShm& operator=(const NodeShm&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }

  // As ProcessGroup::ReduceScatterBlocks: rank r ends with block r of `buf` reduced over all ranks
  // (kAvg left as a sum), in a fixed order (own data, then r+1, r+2, ...); other blocks untouched.
  Status ReduceScatterBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                             ReduceOp op, std::chrono::milliseconds timeout);
  // As ProcessGroup::AllGatherBlocks: block r of rank r's `buf` ends up in everyone's.
  Status AllGatherBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                         std::chrono::milliseconds timeout);

  struct Header;

 private:
  NodeShm(int rank, int size, size_t slot_bytes, void* base, size_t bytes);
  // The barrier ending round `round_`; advances it.
  Status Barrier(std::chrono::steady_clock::time_point deadline);
  char* Slot(int rank) const;  // this round's half
  // Why a call with `blocks` cannot run (the segment broke earlier, or not one block per rank).
  Status CheckCall(const std::vector<Block>& blocks, const char* what) const;
  Status Fail(Status s);

  int rank_, size_;
  size_t slot_bytes_;
  void* base_;
  size_t bytes_;
  Header* header_;
  uint64_t round_ = 0;
  Status broken_;
};

}  // namespace baton::comm
