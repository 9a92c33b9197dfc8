// HO-Ring (PaRO-CC): hierarchical collectives for nodes with fast links inside and slow links
// between (../shared/papers/paro.md §7).
//
//   allreduce      = intra-node reduce-scatter -> inter-node allreduce of each rank's block among
//                    the ranks with the same local index (all local indices at once, so every
//                    rank's slow link carries 1/m of the data) -> intra-node all-gather;
//   reduce-scatter = intra-node reduce-scatter -> inter-node reduce-scatter;
//   all-gather     = inter-node all-gather -> intra-node all-gather.
//
// Beyond the paper, all three are pipelined: the buffer is cut into chunks and while the inter-node
// ring works on chunk c, the intra-node phase works on chunk c+1 (and, for allreduce, all-gathers
// chunk c-1), so the fast and the slow links are busy at the same time. The intra-node phases
// exchange directly among a node's ranks by default (direct.h) rather than in a ring.
//
// Results equal the flat ring's (up to floating-point summation order) with the same semantics as
// ProcessGroup's calls. When HO-Ring is not eligible (one node, one rank per node, nodes of unequal
// size, or a message under the threshold) the call runs the flat ring on the world group.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "comm/collectives.h"
#include "comm/process_group.h"
#include "comm/shm_group.h"
#include "comm/topology.h"
#include "common/status.h"

namespace baton::comm {

enum class IntraNode { kSharedMemory, kDirect, kRing };

struct HierarchicalOptions {
  // Names this instance's subgroups under the world group's prefix; every HierarchicalRing made
  // from one world group needs its own name.
  std::string name = "hring";
  // Messages smaller than this take the flat ring: under ~1 MiB the extra phases' latency costs
  // more than the slow-link bytes they save.
  size_t threshold_bytes = 1 << 20;
  // Pipeline chunk. Smaller chunks overlap the phases better but pay each ring's per-step latency
  // more often; 0 disables pipelining (the paper's sequential phases). 1 MiB measured best from
  // 1 to 64 MiB on 2x2 and 2x4 (4 MiB left a 4 MiB message unpipelined; 512 KiB lost to latency).
  size_t pipeline_chunk_bytes = 1 << 20;
  // How the intra-node phases move data. kSharedMemory (default): through a segment the node's
  // ranks map (shm_group.h); kDirect: one exchange step over loopback sockets; kRing: the paper's
  // ring inside the node as well.
  IntraNode intra_node = IntraNode::kSharedMemory;
  // Per-rank slot of the shared-memory segment (two halves of ranks-per-node slots are mapped).
  size_t shm_slot_bytes = 4 << 20;
};

// Implements Collectives (collectives.h): allreduce, reduce-scatter and all-gather as above;
// barrier and broadcast run flat on the world group (they move no bulk data between nodes worth
// splitting); rank() and size() are the world's.
class HierarchicalRing : public Collectives {
 public:
  // Collective over `world`: forms the intra-node and inter-node subgroups that this rank belongs
  // to. `world` must outlive the returned object.
  static Result<std::unique_ptr<HierarchicalRing>> Create(ProcessGroup& world, Topology topology,
                                                          HierarchicalOptions options = {});
  ~HierarchicalRing() override;

  // Whether a message of `bytes` takes the hierarchical path (same answer on every rank).
  bool Eligible(size_t bytes) const;

  int rank() const override { return world_.rank(); }
  int size() const override { return world_.size(); }
  Status Barrier(const CallOptions& call = {}) override { return world_.Barrier(call); }
  Status Broadcast(void* buf, size_t count, DataType type, int root,
                   const CallOptions& call = {}) override {
    return world_.Broadcast(buf, count, type, root, call);
  }
  Status AllReduce(void* buf, size_t count, DataType type, ReduceOp op,
                   const CallOptions& call = {}) override;
  Status ReduceScatter(const void* in, void* out, size_t count, DataType type, ReduceOp op,
                       const CallOptions& call = {}) override;
  Status AllGather(const void* in, void* out, size_t count, DataType type,
                   const CallOptions& call = {}) override;

  const Topology& topology() const { return topology_; }
  ProcessGroup& world() { return world_; }

 private:
  HierarchicalRing(ProcessGroup& world, Topology topology, HierarchicalOptions options);
  Status PipelinedAllReduce(char* buf, size_t count, DataType type, ReduceOp op,
                            const CallOptions& call);
  // Order in which HO reduce-scatter / all-gather see the world's blocks: super-block d (the part
  // local index d owns after the intra phase) lists the blocks of INTER_d in node order.
  std::vector<int> PackedOrder() const;
  // Pipeline chunks for a message of `bytes` (1 when pipelining is off).
  size_t Chunks(size_t bytes) const;
  // Runs first(c) for every chunk on this thread and second(c) on a helper thread once first(c)
  // is done, so consecutive chunks' phases overlap; stops both at the first error.
  static Status RunTwoStages(size_t chunks, const std::function<Status(size_t)>& first,
                             const std::function<Status(size_t)>& second);
  // The intra-node phases, through shared memory or the intra group (HierarchicalOptions).
  Status IntraReduceScatter(void* buf, const std::vector<Block>& blocks, DataType type, ReduceOp op,
                            const CallOptions& call);
  Status IntraAllGather(void* buf, const std::vector<Block>& blocks, DataType type,
                        const CallOptions& call);
  std::chrono::milliseconds IntraTimeout(const CallOptions& call) const;
  Algorithm IntraAlgorithm() const;

  ProcessGroup& world_;
  Topology topology_;
  HierarchicalOptions options_;
  std::unique_ptr<ProcessGroup> intra_;
  std::unique_ptr<ProcessGroup> inter_;
  std::unique_ptr<NodeShm> shm_;  // with IntraNode::kSharedMemory
  // Packing buffer of reduce-scatter and all-gather, kept between calls: fresh multi-MiB
  // allocations cost a page fault per page on every call (badly so in VMs).
  std::vector<char> packed_;
};

}  // namespace baton::comm
