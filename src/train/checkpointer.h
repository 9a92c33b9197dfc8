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

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "comm/collectives.h"
#include "comm/store.h"
#include "common/status.h"
#include "sdk/rendezvous.h"
#include "train/checkpoint_store.h"
#include "train/data_feed.h"
#include "train/snapshot.h"

namespace baton::train {

// The shared-memory slots of one job, node and checkpoint directory (two jobs of one name with
// different checkpoint directories never share slots): /dev/shm/baton-JOB-NODE-HASH.
std::string NodeMemoryPrefix(const sdk::WorkerIdentity& id, const std::string& checkpoint_dir);

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
  // A job kind's variable-size part beside the flat buffers (G-Meta: the whole embedding table,
  // the same on every rank), or null. Take encodes its contents; Restore replaces them (rank 0's
  // when a new job starts).
  std::string* extra = nullptr;
};

// The job's checkpoint record, kept by the master (its job-scoped KV, which outlives generations
// and master restarts): the job's lineage and the latest snapshot rank 0 persisted. A new job
// (no record) starts from the model file whatever the checkpoint directory holds; a job whose
// rank 0 cannot read a snapshot at least as new as the record stops with an error instead of
// training on from an older state (a checkpoint.dir that is not shared by every node, or lost).
inline constexpr std::string_view kCheckpointRecordKey = "train.checkpoint";

class Checkpointer {
 public:
  // `job_store`: the master's job-scoped KV (sdk::Rendezvous::Store(0)).
  Checkpointer(CheckpointOptions options, DataFeed& feed, std::shared_ptr<comm::Store> job_store);

  // On forming generation `gen` (collectives over its members): every member loads the best
  // snapshot any of them can read into `buffers`, and the data feed rolls back to its progress.
  // Returns its step. With no snapshot at all (a new job) rank 0's buffers are broadcast as step
  // 0. Errors: Unavailable or DeadlineExceeded when a peer failed (join the next generation);
  // anything else means training cannot go on (the snapshot is of another model, the checkpoint
  // directory lost its snapshots, the disk failed) and every member returns it.
  Result<int64_t> Restore(comm::Collectives& group, const sdk::Generation& gen,
                          const TrainingBuffers& buffers, bool had_steps);

  bool Due(int64_t step) const { return step % options_.every_steps == 0; }

  enum class Outcome {
    kTaken,     // in memory, and on its way to disk
    kSkipped,   // some rank could not confirm its leases with the master: try again later
    kLeaseLost  // some rank lost a lease: roll back (Restore on the same group)
  };
  // After step `step` completed on every rank, with every row handed out applied
  // (DataFeed::MarkApplied): every rank confirms its leases, then the progress is gathered and
  // the snapshot written. The same outcome on every rank. Errors as Restore's.
  Result<Outcome> Take(comm::Collectives& group, const sdk::Generation& gen, int64_t step,
                       const TrainingBuffers& buffers);

  // Rank 0: the step of the latest snapshot of this branch that is persisted and on the master's
  // record (it records a newly persisted one first: call once a step); -1: none. Shards whose
  // last row was applied at or before it may be committed.
  int64_t CommittableStep();
  // Rank 0: the error of a failed background persist (seen by CommittableStep); training must stop
  // (every rank, through the step's flags): nothing more can be committed.
  const Status& persist_error() const { return persist_error_; }
  // What the latest snapshot says was applied, per epoch.
  const Ledger& ledger() const { return ledger_; }
  // What checkpointing cost this rank: snapshots taken, the last one's size (0 on ranks that keep
  // none), the milliseconds spent in Take (confirm, gather, encode, memory write; not the disk,
  // which is a background thread's), and snapshots rank 0 did not persist because a newer one
  // replaced them while the disk was busy.
  struct Stats {
    int64_t taken = 0;
    size_t bytes = 0;
    double ms = 0;
    int64_t persists_skipped = 0;
  };
  const Stats& stats() const { return stats_; }
  // This process is leaving: waits for the disk; when the training is over (not when the worker
  // was only stopped), removes this node's memory slots.
  void Finish(const sdk::Generation& gen, bool training_done);

 private:
  // Rank 0's part of Restore: the lineage, and the disk snapshot if it is needed.
  Status DecideLineage(std::optional<StoredSnapshot>* disk, bool* fresh);
  Status WriteRecord(SnapshotKey key);

  CheckpointOptions options_;
  DataFeed& feed_;
  std::shared_ptr<comm::Store> job_store_;
  std::unique_ptr<MemorySnapshots> memory_;
  DiskSnapshots disk_;
  uint64_t lineage_ = 0;
  int64_t branch_ = 0;  // the generation that restored the state this process trains on
  // Rank 0: the key on the master's record (SnapshotKey::Packed; -1: none). Written by the
  // persist thread after each persist, so that the record's RPC (durable on the master: an
  // fsync there) never holds up a step.
  std::atomic<int64_t> recorded_{-1};
  Status persist_error_;
  CursorTable cursors_;
  Ledger ledger_;
  std::string snapshot_;  // encode buffer, reused
  Stats stats_;
};

}  // namespace baton::train
