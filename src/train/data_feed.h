// DataFeed: the records one training rank consumes, from the shards its worker leases in the DDS.
// A shard is read and parsed whole when it is leased (infer's RowParser: the same formats, columns
// and messages as `kind: infer`); a shard with more bad records than train.max_error_rate is
// given back before any of its records is used, and its bad records go to the errors file.
//
// Records are handed out in batches. The feed tracks, per held shard, how many of its rows were
// applied in completed steps (MarkApplied) and the step that applied its last one; a shard is
// committed only once a persisted snapshot covers that step (CommitDurable), so a shard never
// counts as done in the DDS before a checkpoint has learned from all of it. Rolling back to a
// snapshot (Restore) resets every held shard to the snapshot's cursor, and a shard leased later
// starts where the snapshot's cursor table says (a dead rank's shard, picked up by another):
// exactly once per epoch (train/checkpointer.h).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "common/status.h"
#include "infer/row_parser.h"
#include "infer/tensor.h"
#include "sdk/worker.h"
#include "train/snapshot.h"
#include "train/train_spec.h"

namespace baton::train {

class DataFeed {
 public:
  DataFeed(const TrainSpec& spec, sdk::Worker& worker) : spec_(spec), worker_(worker) {}

  struct Fill {
    size_t rows = 0;        // rows appended to the batch
    bool finished = false;  // the job has no more work (the DDS says so): nothing will come
  };
  // Appends up to `want` records to `batch` (whose tensors are created on first use). Leases
  // shards without waiting: when every remaining shard is leased elsewhere it returns what it has.
  Result<Fill> Take(size_t want, std::vector<infer::HostTensor>* batch);

  // Every row handed out so far was applied in completed step `step`; shards whose last row is
  // now applied remember `step`.
  void MarkApplied(int64_t step);
  // Shards leased and not yet committed.
  size_t held() const { return held_.size(); }
  // Commits the shards whose last row was applied at or before `durable_step`. A FENCED shard
  // (this worker lost its lease: it was paused) is dropped; its holder's snapshot cursor goes on.
  Status CommitDurable(int64_t durable_step);

  // Rolls back to a snapshot's progress: held shards restart at their cursor in `cursors` (or at
  // their first row), shards leased from now on too; what was applied since is forgotten. Shards
  // whose lease was lost are dropped.
  void Restore(const CursorTable& cursors);
  // The cursor table of the latest snapshot, for shards leased from now on.
  void SetCursors(const CursorTable& cursors) { cursors_ = cursors; }

  // What a snapshot needs from this rank: the cursors of held shards that have applied rows, the
  // shards committed and the records applied (per epoch) since the last ProgressRecorded.
  struct Progress {
    std::vector<std::pair<uint64_t, ShardCursor>> held;
    std::vector<uint64_t> committed;
    Ledger applied;
  };
  const Progress& progress();
  // The progress was gathered into a snapshot: start counting anew.
  void ProgressRecorded();

  // Held shards whose lease the master no longer honours (expired and possibly leased again) and
  // of which rows were handed out since the snapshot they started from: another rank may apply
  // those rows too, so the ranks must roll back (Restore drops these shards). A lost shard none
  // of whose rows were handed out is simply dropped (Take).
  size_t lost() const;
  // Renews every held lease with the master now (sdk::Worker::ConfirmLeases).
  Status ConfirmLeases() { return worker_.ConfirmLeases(); }

  uint64_t bad_records() const { return bad_records_; }
  // The epoch (input.epochs; 0-based) of the shard the last records came from.
  int32_t epoch() const { return epoch_; }

 private:
  struct ParsedShard {
    std::unique_ptr<sdk::Shard> shard;
    std::vector<infer::HostTensor> rows;
    std::vector<uint64_t> fingerprints;  // RecordFingerprint of each row
    int64_t count = 0;                   // rows parsed
    int64_t next = 0;                    // rows handed out
    ShardCursor cursor;                  // rows applied in completed steps
    int64_t started_at = 0;              // the row it (re)started at: its snapshot cursor
  };
  // Leases and parses one shard; null when none is leasable now (`*finished` when none will be).
  Result<std::unique_ptr<ParsedShard>> LeaseAndParse(bool* finished);
  // Null when the shard had too many bad records (it was given back).
  Result<std::unique_ptr<ParsedShard>> Parse(std::unique_ptr<sdk::Shard> shard);
  void StartAt(ParsedShard& s, const ShardCursor* cursor);

  const TrainSpec& spec_;
  sdk::Worker& worker_;
  std::vector<std::unique_ptr<ParsedShard>> held_;  // in lease order
  CursorTable cursors_;
  Progress progress_;  // held: rebuilt by progress(); committed, applied: since the last snapshot
  uint64_t bad_records_ = 0;
  int32_t epoch_ = 0;
};

}  // namespace baton::train
