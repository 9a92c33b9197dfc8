// DataFeed: the records one training rank consumes, from the shards its worker leases in the DDS.
// A shard is read and parsed whole when it is leased (infer's RowParser: the same formats, columns
// and messages as `kind: infer`); a shard with more bad records than train.max_error_rate is
// given back before any of its records is used, and its bad records go to the errors file.
//
// Records are handed out in batches; a shard is committed only once every one of its records was
// applied in a step the ranks completed (MarkApplied, then CommitApplied), so a shard never counts
// as done before the model has learned from it. Until flash checkpoints carry the consumed
// offsets, a rank that dies takes its uncommitted shards' progress with it: they are leased again
// and their records applied a second time (at least once, not yet exactly once).
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <vector>

#include "common/status.h"
#include "infer/row_parser.h"
#include "infer/tensor.h"
#include "sdk/worker.h"
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

  // Every record handed out so far was applied in a completed step.
  void MarkApplied();
  // Shards fully handed out and applied but not yet committed.
  size_t applied_uncommitted() const { return applied_.size(); }
  // Shards leased and not yet committed (in use, or waiting for their commit).
  size_t held() const { return parsed_.size() + handed_out_.size() + applied_.size(); }
  // Commits the applied shards. A FENCED shard (this worker lost its lease: it was paused) is
  // dropped, it will be trained on again elsewhere.
  Status CommitApplied();

  uint64_t bad_records() const { return bad_records_; }
  // The epoch (input.epochs; 0-based) of the shard the last records came from.
  int32_t epoch() const { return epoch_; }

 private:
  struct ParsedShard {
    std::unique_ptr<sdk::Shard> shard;
    std::vector<infer::HostTensor> rows;
    int64_t count = 0;  // rows parsed
    int64_t next = 0;   // rows handed out
  };
  // Leases and parses one shard; null when none is leasable now (`*finished` when none will be).
  Result<std::unique_ptr<ParsedShard>> LeaseAndParse(bool* finished);
  // Null when the shard had too many bad records (it was given back).
  Result<std::unique_ptr<ParsedShard>> Parse(std::unique_ptr<sdk::Shard> shard);

  const TrainSpec& spec_;
  sdk::Worker& worker_;
  std::deque<std::unique_ptr<ParsedShard>> parsed_;       // with rows left, front first
  std::vector<std::unique_ptr<ParsedShard>> handed_out_;  // every row handed out, not applied
  std::vector<std::unique_ptr<ParsedShard>> applied_;     // applied, not yet committed
  uint64_t bad_records_ = 0;
  int32_t epoch_ = 0;
};

}  // namespace baton::train
