// How predictions and bad records are written. Output rows (one per item a model writes):
//   CSV:   key,v0,v1,...             (single model: the model's outputs flattened, in order)
//          key,model,item,v0,v1,...  (several models: which model, which item of the record)
//   JSONL: {"key":K,"model":M,"item":I,"<output name>":value or [values],...}
//          ("model" and "item" only with several models)
// Floats are written in their shortest round-trip form. Error rows (JSONL, one per bad record):
//   {"file":F,"record":N,"key":K,"stage":"parse|decode|predict","error":"..."}
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "infer/infer_spec.h"
#include "infer/tensor.h"

namespace baton::infer {

struct RowRef {
  const std::string* key;
  const std::string* model;  // null: single-model job
  int32_t item = 0;
};

// Appends the output row for row `row` of `outputs` (each [N, ...]) to `out`, with a newline.
void AppendOutputRow(OutputFormat format, const RowRef& ref, const std::vector<HostTensor>& outputs,
                     int64_t row, const std::vector<std::string>& output_names, std::string* out);

// One error record, with a newline.
std::string ErrorRow(const std::string& file, uint64_t record, const std::string& key,
                     const std::string& stage, const std::string& message);

}  // namespace baton::infer
