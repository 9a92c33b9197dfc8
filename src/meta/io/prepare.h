// The library behind `baton meta prepare` (docs/meta.md, "Meta-IO"): groups row data (CSV or
// JSONL) by task, splits each task into support and query rows and writes one episode per task
// into an episode file (episode_file.h). Bad rows are skipped and listed in an errors file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton::meta {

enum class InputFormat {
  kAuto,   // by each input's extension: .csv is CSV, .jsonl and .ndjson are JSONL
  kCsv,    // a header line naming the columns, then one row a line (RFC 4180 quoting, one line)
  kJsonl,  // one JSON object a line; fields looked up by name
};

struct PrepareOptions {
  // Input files, read in this order (it is the "file order" of rows). Required.
  std::vector<std::string> inputs;
  // The episode file to write. Required. Written atomically (episode_file.h).
  std::string output;
  // Where bad rows are listed, one JSON object a line; "" (default) means output + ".errors.jsonl".
  // Always written (empty when every row was good), so it never holds a previous run's rows.
  std::string errors_path;
  // Format of the inputs; default kAuto (by extension).
  InputFormat format = InputFormat::kAuto;
  // Column whose value names a row's task (any non-empty string; a JSON number counts by its
  // text). Required.
  std::string task_key;
  // Column holding the 0/1 label: a number equal to 0 or 1, or true/false (any case). Required.
  std::string label;
  // Float feature columns, in episode column order. Default none.
  std::vector<std::string> dense;
  // Categorical feature columns, in episode column order; any string value (a JSON number or
  // boolean by its text, null as ""), hashed by SparseId. Default none. dense and sparse together
  // must name at least one column.
  std::vector<std::string> sparse;
  // Optional numeric column ("" = none, the default): within a task rows are sorted ascending by
  // it (ties keep file order) and the older rows become support. Without it, file order.
  std::string order_by;
  // Share of a task's rows that become support: floor(n * f) clamped to [1, n-1]. Default 0.5;
  // must lie in (0, 1).
  double support_fraction = 0.5;
  // Tasks with fewer good rows are skipped (counted in tasks_skipped). Default 2; at least 2.
  size_t min_rows = 2;
  // Caps on support and query rows per episode, 0 (default) = no cap. A cap keeps the rows next to
  // the support/query boundary: the last max_support support rows and the first max_query query
  // rows (with order_by: the newest support and the oldest query rows).
  size_t max_support = 0;
  size_t max_query = 0;
  // Episode order in the file: without a seed (default) sorted by task id (bytewise); with one, a
  // Fisher-Yates shuffle driven by std::mt19937_64(seed), the same on every platform.
  std::optional<uint64_t> seed;
  // Called every `progress_every` rows read (and not at all when null), e.g. to print progress.
  std::function<void(uint64_t rows_read)> progress;
  uint64_t progress_every = 100000;
};

struct PrepareSummary {
  uint64_t rows_read = 0;      // data rows seen (blank lines and CSV header lines not counted)
  uint64_t bad_rows = 0;       // rows skipped and listed in the errors file
  uint64_t tasks_written = 0;  // episodes in the output file
  uint64_t tasks_skipped = 0;  // tasks with fewer than min_rows good rows
  uint64_t rows_skipped = 0;   // good rows of skipped tasks
  uint64_t rows_capped = 0;    // good rows dropped by max_support / max_query
  uint64_t support_rows = 0;   // written support rows, all episodes
  uint64_t query_rows = 0;     // written query rows, all episodes
  std::string output;          // the episode file written
  std::string errors_path;     // the errors file written
  // The episode file's index as text, OUTPUT.index.csv: "episode,task" and one line per episode
  // (its number and task id, in file order). It is the input of a `kind: meta` job: the DDS
  // leases its lines, so episodes are the records it shards.
  std::string index_path;
};

// The id of categorical value `value` of sparse field `field` (its 0-based position in
// PrepareOptions::sparse): XXH3-64 of the value's bytes with `field` as the seed (the field's
// salt), top bit cleared so every id is a non-negative int64. Equal values of different fields
// get unrelated ids, so one embedding table can serve all fields.
int64_t SparseId(uint32_t field, std::string_view value);

// Whether `text` is valid UTF-8 (strict: no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view text);

// Runs the preparation. InvalidArgument for bad options, a column missing from a CSV header or
// from the first JSONL record, or an input whose format cannot be told; these are found before
// anything is written. IoError when an input cannot be read or an output cannot be written.
Result<PrepareSummary> Prepare(const PrepareOptions& options);

}  // namespace baton::meta
