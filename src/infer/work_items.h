// What flows through an infer worker's pipeline: the shard being worked on, raw record batches,
// batches of model inputs, and predictions on their way to the writers (engine.h draws the stages).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "infer/image_ops.h"
#include "infer/tensor.h"
#include "sdk/worker.h"

namespace baton::infer {

// One leased shard in flight. `pending` counts the units of work still owed to it: one per
// record on its way through the models, one per item a model emitted, plus one held by the reader
// until it has read the whole shard. Whoever releases the last unit finishes the shard.
struct ShardWork {
  std::unique_ptr<sdk::Shard> shard;
  std::string file;
  std::atomic<int64_t> pending{1};
  std::mutex mu;
  struct Row {
    uint64_t record;
    int32_t model;
    int32_t item;
    std::string text;
  };
  std::vector<Row> rows;
  std::string errors;
  uint64_t error_count = 0;
  // Blank lines among the shard's records (row_parser.h): not data, not in the error rate.
  std::atomic<uint64_t> blank_count{0};
};
using ShardPtr = std::shared_ptr<ShardWork>;

struct RawBatch {
  ShardPtr shard;
  uint64_t first_record = 0;
  // The batch's records back to back in one buffer (one allocation per batch, not per record).
  std::string bytes;
  std::vector<uint32_t> ends;  // record i is bytes[ends[i-1] (or 0), ends[i])

  size_t size() const { return ends.size(); }
  std::string_view line(size_t i) const {
    const size_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(bytes).substr(begin, ends[i] - begin);
  }
  void Add(std::string_view record) {
    bytes.append(record);
    ends.push_back(static_cast<uint32_t>(bytes.size()));
  }
};

// Items for one model. Items of a downstream model may come from several shards.
struct ModelBatch {
  int32_t model = 0;
  std::vector<ShardPtr> owners;
  std::vector<uint64_t> records;
  std::vector<int32_t> items;
  std::vector<std::string> keys;
  std::vector<std::shared_ptr<const Image>> images;  // kept only when a crop model follows
  std::vector<HostTensor> inputs;

  size_t size() const { return keys.size(); }
};

struct PredictedBatch {
  ModelBatch batch;
  std::vector<HostTensor> outputs;
};

// Items [begin, end) of `b`, copied.
ModelBatch SliceBatch(const ModelBatch& b, size_t begin, size_t end);
// Moves the items of `from` to the end of `into` (re-batching for downstream models).
void AppendBatch(ModelBatch& into, ModelBatch&& from);

}  // namespace baton::infer
