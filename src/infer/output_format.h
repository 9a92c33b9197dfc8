// How predictions and bad records are written. Output rows (one per item a model writes):
//   CSV:   key,v0,v1,...             (single model: the model's outputs flattened, in order)
//          key,model,item,v0,v1,...  (several models: which model, which item of the record)
//   JSONL: {"key":K,"model":M,"item":I,"<output name>":value or [values],...}
//          ("model" and "item" only with several models)
// Floats are written in their shortest round-trip form; NaN and infinities by infer.non_finite
// (null / empty CSV field, "NaN"/"Infinity"/"-Infinity", or an error), so JSONL rows are always
// valid JSON. CSV keys are written byte for byte (quoted when needed); in JSON a key or file name
// that is not valid UTF-8 is written as "key_base64"/"file_base64" (json_text.h). Error rows
// (JSONL, one per bad record):
//   {"error":"...","file":F,"key":K,"record":N,"stage":"parse|decode|predict:<m>|output:<m>"}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "infer/infer_spec.h"
#include "infer/tensor.h"

namespace baton::infer {

struct RowRef {
  const std::string* key;
  const std::string* model;  // null: single-model job
  int32_t item = 0;
};

struct OutputStyle {
  OutputFormat format = OutputFormat::kJsonl;
  NonFinite non_finite = NonFinite::kNull;
};

// Appends the output row for row `row` of `outputs` (each [N, ...]) to `out`, with a newline.
// Returns how many of its values were NaN or infinite. With NonFinite::kError such a row is not
// written: InvalidArgument names the first such value ("output score[1] is NaN").
Result<int64_t> AppendOutputRow(const OutputStyle& style, const RowRef& ref,
                                const std::vector<HostTensor>& outputs, int64_t row,
                                const std::vector<std::string>& output_names, std::string* out);

// Writes the bad records of one attempt of shard `shard_id` to ERRORS_DIR/part-<shard>.errors.jsonl
// with a rename (a reader never sees half of it; a later attempt's file replaces an earlier one's
// whole), or removes an earlier attempt's file when `errors` is empty: the file always describes
// the shard's latest attempt. Shared by every kind that reads rows (infer, train).
Status WriteShardErrors(const std::string& errors_dir, uint64_t shard_id,
                        const std::string& errors);

// One error record, with a newline.
std::string ErrorRow(const std::string& file, uint64_t record, const std::string& key,
                     const std::string& stage, const std::string& message);

}  // namespace baton::infer
