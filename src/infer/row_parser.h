// Turns CSV/TSV/JSONL records into model input tensors by the spec's schema (infer.key,
// infer.tensors). A bad record yields an error naming the column and what was wrong; the batch
// being built is untouched by it, so one bad row never corrupts its neighbours.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "infer/record_schema.h"
#include "infer/tensor.h"

namespace baton::infer {

// A line that holds no record: empty, or only spaces, tabs and carriage returns. The splitter
// counts every line (so that shard ranges, record indices and the SDK's completeness check stay
// the same for every job kind); the infer worker skips such a line wherever it is: no output row,
// no error, and it is not counted in the error rate.
bool IsBlankLine(std::string_view line);

// Splits one CSV (RFC 4180 quoting: "a,b" and "" for a quote) or TSV (no quoting) line into
// fields. `storage` keeps unquoted copies alive when a field had quotes.
Status SplitFields(std::string_view line, char delimiter, std::vector<std::string_view>* fields,
                   std::vector<std::string>* storage);

// The column names of `path`: its first line when the input has a header, else spec.header.
Result<std::vector<std::string>> ColumnsOf(const RecordSchema& spec, const std::string& path);

// Whether the input files fit the schema: CSV/TSV columns exist in every file's header (or
// `header`), a JSONL file's first record parses. Problems as "SPEC:LINE: SECTION.tensors: ..."
// lines, none when it fits.
std::vector<std::string> CheckRecordsFit(const RecordSchema& spec, const std::string& spec_path,
                                         const std::string& section,
                                         const std::vector<std::string>& input_files);

class RowParser {
 public:
  // For CSV/TSV: maps the key and tensor columns to positions in `columns` (the file's header).
  // An unknown column is an InvalidArgument naming it, the file and the columns there are.
  static Result<RowParser> ForDelimited(const RecordSchema& spec,
                                        const std::vector<std::string>& columns,
                                        const std::string& file);
  // For JSONL: fields are looked up by name in each record.
  static RowParser ForJsonl(const RecordSchema& spec);
  // The parser for `file` by the schema's format: JSONL, or CSV/TSV with the file's columns
  // (ColumnsOf: its header line, or `header`).
  static Result<RowParser> ForFile(const RecordSchema& spec, const std::string& file);

  // Empty tensors of the right types and row widths, to Append into.
  std::vector<HostTensor> NewBatch(size_t reserve_rows) const;
  // Parses `line` and appends its values as one row of `batch`; sets `key`. On error nothing is
  // appended.
  Status Append(std::string_view line, std::string* key, std::vector<HostTensor>* batch);

 private:
  explicit RowParser(const RecordSchema& spec) : spec_(&spec) {}
  Status AppendDelimited(std::string_view line, std::string* key, std::vector<HostTensor>* batch);
  Status AppendJson(std::string_view line, std::string* key, std::vector<HostTensor>* batch);
  // Appends the values parsed into row_f_/row_i_ as one row of `batch`.
  void CommitRow(std::vector<HostTensor>* batch);

  const RecordSchema* spec_;
  char delimiter_ = ',';
  bool json_ = false;
  int key_index_ = -1;
  std::vector<std::vector<int>> tensor_indices_;  // per tensor, per column: field position
  size_t min_fields_ = 0;
  // Scratch reused across rows.
  std::vector<std::string_view> fields_;
  std::vector<std::string> storage_;
  std::vector<float> row_f_;
  std::vector<int64_t> row_i_;
};

}  // namespace baton::infer
