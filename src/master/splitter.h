// Splitting a dataset into shards: the "what" of Stateful DDS, kept apart from the queue
// bookkeeping (dds.h) so that other sources (binary record files, tables) can be added.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::master {

// A shard's data: whole records occupying [byte_begin, byte_end) of one file.
struct RecordRange {
  uint32_t file_index = 0;  // into the splitter's file list
  uint64_t byte_begin = 0;
  uint64_t byte_end = 0;
  uint64_t first_record = 0;  // index of the first record within its file
  uint32_t record_count = 0;
};

class DatasetSplitter {
 public:
  virtual ~DatasetSplitter() = default;
  // Files the ranges point into, by file_index.
  virtual const std::vector<std::string>& files() const = 0;
  // One epoch's ranges, in file order. Deterministic: the same input gives the same ranges, which
  // is what lets a restarted master trust the ranges it persisted.
  virtual Result<std::vector<RecordRange>> Split() = 0;
};

// Newline-delimited files (text, CSV, JSONL): every line is one record; a final line without a
// newline counts. Shards never span files.
class LineFileSplitter : public DatasetSplitter {
 public:
  LineFileSplitter(std::vector<std::string> files, uint32_t records_per_shard, bool skip_header);
  const std::vector<std::string>& files() const override { return files_; }
  Result<std::vector<RecordRange>> Split() override;

 private:
  std::vector<std::string> files_;
  uint32_t records_per_shard_;
  bool skip_header_;
};

}  // namespace baton::master
