// ProcessGroup: a fixed set of ranks that run collectives together over gloo's TCP transport.
//
// A group is formed once, through a Store, under a generation prefix; every member passes the same
// prefix and size and a distinct rank. Collectives are called by every member in the same order.
// Every call is bounded by a timeout: a dead or stuck peer surfaces as a non-OK Status
// (kUnavailable when a connection broke, kDeadlineExceeded when nothing arrived in time), never as
// a hang. After any failure the group is broken for good: later calls fail at once with
// kFailedPrecondition, and the survivors form a new group under a new prefix (see generation.h).
//
// Buffers are raw memory of `count` elements of a DataType; the caller keeps them alive and
// untouched for the duration of the call. Calls on one group must not overlap (one thread at a
// time); different groups may be used from different threads concurrently.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/collectives.h"
#include "comm/store.h"
#include "comm/types.h"
#include "common/status.h"

namespace baton::comm {

struct GroupOptions {
  // Store key prefix of this group's generation, e.g. "job42/gen0". Reusing a prefix of a group
  // that already formed is a bug: the stale addresses would be read.
  std::string prefix;
  int rank = 0;
  int size = 1;
  // Local address the transport listens on and publishes to peers (an address of this host that
  // every peer can reach; 127.0.0.1 for single-host runs).
  std::string address = "127.0.0.1";
  // Bound on forming the group and the default bound on each collective. Shorter detects a dead
  // peer sooner; too short fails slow but healthy calls (a 256 MiB allreduce over 1 Gbit/s takes
  // several seconds).
  std::chrono::milliseconds timeout{30000};
};

// The flat implementation of Collectives (collectives.h), and the base every other algorithm in
// this module builds on.
class ProcessGroup : public Collectives {
 public:
  // Forms the group: publishes this rank's address under `options.prefix` and connects to every
  // peer. Blocks until all `size` ranks joined or the timeout ran out. `store` must outlive the
  // group and every subgroup made from it. Sets SIGPIPE to ignored if it has the default action,
  // so that writing to a dead peer fails the call instead of killing the process.
  static Result<std::unique_ptr<ProcessGroup>> Create(std::shared_ptr<Store> store,
                                                      const GroupOptions& options);
  ~ProcessGroup() override;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const override;
  int size() const override;
  const GroupOptions& options() const;
  // OK while healthy; after a failed call, the error that broke the group.
  Status health() const;

  // Forms a group of the given members (world ranks, in subgroup-rank order). Called by exactly the
  // members, all with the same `ranks` and `name`; `name` must be unique within this group.
  Result<std::unique_ptr<ProcessGroup>> NewSubgroup(const std::vector<int>& ranks,
                                                    const std::string& name);

  // Collectives (semantics in collectives.h).
  Status Barrier(const CallOptions& call = {}) override;
  Status Broadcast(void* buf, size_t count, DataType type, int root,
                   const CallOptions& call = {}) override;
  Status AllReduce(void* buf, size_t count, DataType type, ReduceOp op,
                   const CallOptions& call = {}) override;
  Status ReduceScatter(const void* in, void* out, size_t count, DataType type, ReduceOp op,
                       const CallOptions& call = {}) override;
  Status AllGather(const void* in, void* out, size_t count, DataType type,
                   const CallOptions& call = {}) override;
  // In-place forms for callers that lay data out in blocks themselves (HO-Ring, sharded
  // optimizers): `buf` holds `count` elements split by Partition(count, size()).
  // ReduceScatterInPlace leaves block rank() reduced (other blocks hold partial results);
  // AllGatherInPlace fills every block from its owner. Always baton's ring.
  Status ReduceScatterInPlace(void* buf, size_t count, DataType type, ReduceOp op,
                              const CallOptions& call = {});
  Status AllGatherInPlace(void* buf, size_t count, DataType type, const CallOptions& call = {});
  // The same with an explicit layout: blocks[r] is rank r's; the blocks are disjoint and cover
  // the buffer but need not be in rank order (PaRO lays chunks out as local·nodes + node). kAvg
  // divides rank()'s block only.
  Status ReduceScatterBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                             ReduceOp op, const CallOptions& call = {});
  Status AllGatherBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                         const CallOptions& call = {});
  // `in` holds size() runs of `count` elements; run j goes to rank j, which stores it as run r.
  Status AllToAll(const void* in, void* out, size_t count, DataType type,
                  const CallOptions& call = {});
  // Like AllToAll with per-rank counts: send_counts[j] elements to rank j (runs packed in `in` in
  // rank order), recv_counts[j] from rank j (packed in `out`). Counts must agree pairwise.
  Status AllToAllV(const void* in, const std::vector<size_t>& send_counts, void* out,
                   const std::vector<size_t>& recv_counts, DataType type,
                   const CallOptions& call = {});
  // Point to point. A send is matched by the recv with the same peer pair and tag, in order.
  Status Send(const void* buf, size_t count, DataType type, int dst, uint32_t tag,
              const CallOptions& call = {});
  Status Recv(void* buf, size_t count, DataType type, int src, uint32_t tag,
              const CallOptions& call = {});

  struct Impl;
  Impl& impl() { return *impl_; }  // for the algorithms in this module

 private:
  explicit ProcessGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::comm
