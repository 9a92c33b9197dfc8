// How records (lines of CSV, TSV or JSONL input files) become tensors: the part of a job spec that
// every job kind reading rows shares (infer, train). RowParser (row_parser.h) applies it; the
// readers below parse it from a kind's section with the one schema reader (spec/schema_reader.h),
// so `infer.tensors` and `train.tensors` accept the same YAML and report the same messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "spec/schema_reader.h"

namespace baton::infer {

// How each record (one line of an input file) is read.
enum class InputKind {
  kCsv,     // comma-separated, optional "quoted" fields; columns named by the header line
  kTsv,     // tab-separated, no quoting
  kJsonl,   // one JSON object a line; columns are its top-level fields
  kImages,  // a manifest: one image path a line (relative to the manifest's directory)
};

enum class TensorType { kFloat32, kInt64 };

// One model input built from row columns: a [batch, columns.size()] tensor.
struct TensorSpec {
  std::string name;
  TensorType type = TensorType::kFloat32;
  // Column names. "d0..d12" in the YAML expands to d0, d1, ..., d12.
  std::vector<std::string> columns;
  int line = 0;  // in the spec file, for messages
};

struct RecordSchema {
  InputKind input = InputKind::kCsv;
  bool input_has_header = false;  // = input.skip_header: the first line of each file names columns
  // Column names when the files have no header line (CSV/TSV without input.skip_header).
  std::vector<std::string> header;
  // The column (or JSON field) that identifies a row. Images: the manifest entry.
  std::string key;
  std::vector<TensorSpec> tensors;  // the model's inputs, in forward() order
};

// Reads input.format and input.skip_header from the job spec's `input` section. `kind` names the
// job kind in messages; images are accepted only with `allow_images`.
void ReadRecordFormat(schema::Reader& r, const schema::Section& input, std::string_view kind,
                      bool allow_images, RecordSchema* out);
// Reads key, header and tensors from a kind's section (`section`, e.g. "infer" or "train"), after
// ReadRecordFormat. Images take no key and no tensors.
void ReadRecordColumns(schema::Reader& r, const schema::Section& section, RecordSchema* out);

// A non-empty list of non-empty strings at `key`; with expand_ranges, items like "d0..d12"
// expand. Absent: true, nothing added.
bool ReadNameList(schema::Reader& r, const schema::Section& s, std::string_view key,
                  std::vector<std::string>* out, bool expand_ranges);

}  // namespace baton::infer
