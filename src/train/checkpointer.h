// Checkpointer: flash checkpoints of data-parallel training, and the restore that makes a job
// apply every record exactly once per epoch across kills, scale changes and master restarts.
//
// Every train.checkpoint.every_steps the ranks gather their data progress (which rows of which
// held shard were applied, which shards they committed, what they applied since: train/snapshot.h)
// into one table, and a snapshot of the parameters, optimizer state and that table is written to
// shared memory on every node and persisted to disk in the background (train/checkpoint_store.h).
//
// When a generation forms (any membership change), every member rolls back to the best snapshot
// some member can read — its node's memory, or the disk — and the data feed goes back to that
// snapshot's progress: rows applied after it are applied again, rows it holds are not. Shards are
// committed in the DDS only once a persisted snapshot holds all their rows, so the DDS never
// counts a shard whose rows a restored model lacks. Rolling back costs at most every_steps steps;
// in exchange no step's partial completion (a peer died inside the all-reduce) needs untangling.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "comm/collectives.h"
#include "common/status.h"
#include "sdk/rendezvous.h"
#include "train/checkpoint_store.h"
#include "train/data_feed.h"
#include "train/snapshot.h"

namespace baton::train {

struct CheckpointOptions {
  int64_t every_steps = 50;   // train.checkpoint.every_steps; default 50
  std::string dir;            // train.checkpoint.dir; default <master.state_dir>/checkpoints
  std::string memory_prefix;  // shared-memory slots; empty: none (restore from disk only)
};

// The state a snapshot holds: flat buffers of `elements` values of `dtype` each.
struct TrainingBuffers {
  comm::DataType dtype = comm::DataType::kFloat32;
  size_t elements = 0;
  void* params = nullptr;
  std::vector<void*> optimizer_state;
};

class Checkpointer {
 public:
  Checkpointer(CheckpointOptions options, DataFeed& feed);

  // On forming generation `gen` (collectives over its members): every member loads the best
  // snapshot any of them can read into `buffers`, and the data feed rolls back to its progress.
  // Returns its step. With no snapshot at all (a new job) rank 0's buffers are broadcast and
  // persisted as step 0 before anything else happens; FailedPrecondition if `had_steps` (this
  // process trained before) yet no snapshot is left: the checkpoint directory was lost.
  Result<int64_t> Restore(comm::Collectives& group, const sdk::Generation& gen,
                          const TrainingBuffers& buffers, bool had_steps);

  bool Due(int64_t step) const { return step % options_.every_steps == 0; }

  // After step `step` completed on every rank, with every row handed out applied
  // (DataFeed::MarkApplied): gathers the progress and writes the snapshot. `persist_now`: rank 0
  // has it on disk before this returns (the end of the data, before the last commits).
  Status Take(comm::Collectives& group, const sdk::Generation& gen, int64_t step,
              const TrainingBuffers& buffers, bool persist_now);

  // Rank 0: the step of the latest snapshot on disk; -1: none yet.
  int64_t durable_step() const { return disk_.durable_step(); }
  // What the latest snapshot says was applied, per epoch.
  const Ledger& ledger() const { return ledger_; }
  // Snapshots rank 0 did not persist because the previous one was still being written.
  int64_t persists_skipped() const { return persists_skipped_; }
  // Training is over: removes this node's memory slots (the disk snapshot stays).
  void Finish(const sdk::Generation& gen);

 private:
  CheckpointOptions options_;
  DataFeed& feed_;
  std::unique_ptr<MemorySnapshots> memory_;
  DiskSnapshots disk_;
  uint64_t lineage_ = 0;
  int64_t branch_ = 0;  // the generation that restored the state this process trains on
  CursorTable cursors_;
  Ledger ledger_;
  std::string snapshot_;  // encode buffer, reused
  int64_t persists_skipped_ = 0;
};

}  // namespace baton::train
