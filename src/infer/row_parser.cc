#include "infer/row_parser.h"

#include <charconv>
#include <fstream>

#include <nlohmann/json.hpp>

namespace baton::infer {
namespace {

std::string Shorten(std::string_view s) {
  return s.size() > 40 ? std::string(s.substr(0, 40)) + "..." : std::string(s);
}

Status ParseFloat(std::string_view s, const std::string& column, float* out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return Status::InvalidArgument("column " + column + ": empty value");
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Status::InvalidArgument("column " + column + ": expected a number, got \"" + Shorten(s) +
                                   "\"");
  }
  return Status::Ok();
}

Status ParseInt(std::string_view s, const std::string& column, int64_t* out) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty()) return Status::InvalidArgument("column " + column + ": empty value");
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return Status::InvalidArgument("column " + column + ": expected an integer, got \"" +
                                   Shorten(s) + "\"");
  }
  return Status::Ok();
}

}  // namespace

bool IsBlankLine(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

Status SplitFields(std::string_view line, char delimiter, std::vector<std::string_view>* fields,
                   std::vector<std::string>* storage) {
  fields->clear();
  storage->clear();
  if (delimiter != ',' || line.find('"') == std::string_view::npos) {
    size_t start = 0;
    while (true) {
      size_t pos = line.find(delimiter, start);
      if (pos == std::string_view::npos) {
        fields->push_back(line.substr(start));
        return Status::Ok();
      }
      fields->push_back(line.substr(start, pos - start));
      start = pos + 1;
    }
  }
  // Quoted fields: unquote into storage (reserved up front so views into it stay valid).
  storage->reserve(line.size() + 1);
  size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == '"') {
      std::string value;
      ++i;
      while (true) {
        if (i >= line.size()) return Status::InvalidArgument("unterminated quoted field");
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            value.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        value.push_back(line[i++]);
      }
      if (i < line.size() && line[i] != ',') {
        return Status::InvalidArgument("text after a closing quote");
      }
      storage->push_back(std::move(value));
      fields->push_back(storage->back());
    } else {
      size_t pos = line.find(',', i);
      size_t end = pos == std::string_view::npos ? line.size() : pos;
      fields->push_back(line.substr(i, end - i));
      i = end;
    }
    if (i >= line.size()) return Status::Ok();
    ++i;  // the comma
    if (i == line.size()) {
      fields->push_back(std::string_view());
      return Status::Ok();
    }
  }
}

Result<std::vector<std::string>> ColumnsOf(const RecordSchema& spec, const std::string& path) {
  if (!spec.input_has_header) return spec.header;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Status::IoError(path + ": cannot read its header line");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  std::vector<std::string_view> fields;
  std::vector<std::string> storage;
  Status s = SplitFields(line, spec.input == InputKind::kTsv ? '\t' : ',', &fields, &storage);
  if (!s.ok()) return Status::InvalidArgument(path + ":1: header: " + s.message());
  return std::vector<std::string>(fields.begin(), fields.end());
}

Result<RowParser> RowParser::ForFile(const RecordSchema& spec, const std::string& file) {
  if (spec.input == InputKind::kJsonl) return ForJsonl(spec);
  BATON_ASSIGN_OR_RETURN(std::vector<std::string> columns, ColumnsOf(spec, file));
  return ForDelimited(spec, columns, file);
}

Result<RowParser> RowParser::ForDelimited(const RecordSchema& spec,
                                          const std::vector<std::string>& columns,
                                          const std::string& file) {
  RowParser p(spec);
  p.delimiter_ = spec.input == InputKind::kTsv ? '\t' : ',';
  auto find = [&](const std::string& name) -> int {
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i] == name) return static_cast<int>(i);
    }
    return -1;
  };
  std::vector<std::string> unknown;
  p.key_index_ = find(spec.key);
  if (p.key_index_ < 0) unknown.push_back(spec.key);
  for (const TensorSpec& t : spec.tensors) {
    std::vector<int> idx;
    for (const std::string& c : t.columns) {
      int i = find(c);
      if (i < 0) unknown.push_back(c);
      idx.push_back(i);
      p.min_fields_ = std::max(p.min_fields_, static_cast<size_t>(i + 1));
    }
    p.tensor_indices_.push_back(std::move(idx));
  }
  p.min_fields_ = std::max(p.min_fields_, static_cast<size_t>(p.key_index_ + 1));
  if (!unknown.empty()) {
    std::string names, have;
    for (const auto& u : unknown) names += (names.empty() ? "\"" : ", \"") + u + "\"";
    for (size_t i = 0; i < columns.size() && i < 12; ++i) have += (i ? ", " : "") + columns[i];
    if (columns.size() > 12) have += ", ... (" + std::to_string(columns.size()) + " in all)";
    return Status::InvalidArgument("unknown column " + names + " in " + file +
                                   " (its columns: " + have + ")");
  }
  return p;
}

RowParser RowParser::ForJsonl(const RecordSchema& spec) {
  RowParser p(spec);
  p.json_ = true;
  return p;
}

std::vector<HostTensor> RowParser::NewBatch(size_t reserve_rows) const {
  std::vector<HostTensor> out;
  for (const TensorSpec& t : spec_->tensors) {
    HostTensor h;
    h.type = t.type;
    h.shape = {0, static_cast<int64_t>(t.columns.size())};
    if (t.type == TensorType::kFloat32) {
      h.f.reserve(reserve_rows * t.columns.size());
    } else {
      h.i.reserve(reserve_rows * t.columns.size());
    }
    out.push_back(std::move(h));
  }
  return out;
}

Status RowParser::Append(std::string_view line, std::string* key, std::vector<HostTensor>* batch) {
  return json_ ? AppendJson(line, key, batch) : AppendDelimited(line, key, batch);
}

Status RowParser::AppendDelimited(std::string_view line, std::string* key,
                                  std::vector<HostTensor>* batch) {
  key->clear();
  BATON_RETURN_IF_ERROR(SplitFields(line, delimiter_, &fields_, &storage_));
  if (static_cast<size_t>(key_index_) < fields_.size()) {
    key->assign(fields_[static_cast<size_t>(key_index_)]);
  }
  if (fields_.size() < min_fields_) {
    return Status::InvalidArgument("expected at least " + std::to_string(min_fields_) +
                                   " fields, got " + std::to_string(fields_.size()));
  }
  // Parse the whole row first so that a bad value leaves the batch as it was.
  row_f_.clear();
  row_i_.clear();
  for (size_t t = 0; t < tensor_indices_.size(); ++t) {
    const TensorSpec& ts = spec_->tensors[t];
    for (size_t c = 0; c < tensor_indices_[t].size(); ++c) {
      std::string_view field = fields_[static_cast<size_t>(tensor_indices_[t][c])];
      if (ts.type == TensorType::kFloat32) {
        float v = 0;
        BATON_RETURN_IF_ERROR(ParseFloat(field, ts.columns[c], &v));
        row_f_.push_back(v);
      } else {
        int64_t v = 0;
        BATON_RETURN_IF_ERROR(ParseInt(field, ts.columns[c], &v));
        row_i_.push_back(v);
      }
    }
  }
  CommitRow(batch);
  return Status::Ok();
}

void RowParser::CommitRow(std::vector<HostTensor>* batch) {
  size_t fi = 0, ii = 0;
  for (size_t t = 0; t < spec_->tensors.size(); ++t) {
    HostTensor& h = (*batch)[t];
    const size_t w = spec_->tensors[t].columns.size();
    if (h.type == TensorType::kFloat32) {
      h.f.insert(h.f.end(), row_f_.begin() + static_cast<ptrdiff_t>(fi),
                 row_f_.begin() + static_cast<ptrdiff_t>(fi + w));
      fi += w;
    } else {
      h.i.insert(h.i.end(), row_i_.begin() + static_cast<ptrdiff_t>(ii),
                 row_i_.begin() + static_cast<ptrdiff_t>(ii + w));
      ii += w;
    }
    ++h.shape[0];
  }
}

Status RowParser::AppendJson(std::string_view line, std::string* key,
                             std::vector<HostTensor>* batch) {
  key->clear();
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument("malformed JSON");
  if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
  auto k = j.find(spec_->key);
  if (k == j.end()) return Status::InvalidArgument("field " + spec_->key + ": missing");
  *key = k->is_string() ? k->get<std::string>() : k->dump();
  row_f_.clear();
  row_i_.clear();
  for (const TensorSpec& ts : spec_->tensors) {
    for (const std::string& c : ts.columns) {
      auto v = j.find(c);
      if (v == j.end()) return Status::InvalidArgument("field " + c + ": missing");
      if (ts.type == TensorType::kFloat32) {
        if (!v->is_number()) {
          return Status::InvalidArgument("field " + c + ": expected a number, got " +
                                         Shorten(v->dump()));
        }
        row_f_.push_back(v->get<float>());
      } else {
        if (!v->is_number_integer()) {
          return Status::InvalidArgument("field " + c + ": expected an integer, got " +
                                         Shorten(v->dump()));
        }
        row_i_.push_back(v->get<int64_t>());
      }
    }
  }
  CommitRow(batch);
  return Status::Ok();
}

std::vector<std::string> CheckRecordsFit(const RecordSchema& spec, const std::string& spec_path,
                                         const std::string& section,
                                         const std::vector<std::string>& input_files) {
  std::vector<std::string> problems;
  auto add = [&](int line, const std::string& key, const std::string& message) {
    problems.push_back(spec_path + ":" + std::to_string(line) + ": " + key + ": " + message);
  };
  if (spec.input == InputKind::kCsv || spec.input == InputKind::kTsv) {
    for (const std::string& file : input_files) {
      auto columns = ColumnsOf(spec, file);
      if (!columns.ok()) {
        add(1, "input.paths", columns.status().message());
        continue;
      }
      auto parser = RowParser::ForDelimited(spec, *columns, file);
      if (!parser.ok())
        add(spec.tensors.empty() ? 1 : spec.tensors[0].line, section + ".tensors",
            parser.status().message());
    }
  } else if (spec.input == InputKind::kJsonl && !input_files.empty()) {
    // JSONL has no header: the first record (blank lines are no records) shows whether the
    // fields are there.
    std::ifstream in(input_files[0]);
    std::string line;
    bool found = false;
    while (!found && std::getline(in, line)) found = !IsBlankLine(line);
    if (found) {
      RowParser parser = RowParser::ForJsonl(spec);
      std::vector<HostTensor> batch = parser.NewBatch(1);
      std::string key;
      Status s = parser.Append(line, &key, &batch);
      if (!s.ok()) {
        add(spec.tensors.empty() ? 1 : spec.tensors[0].line, section + ".tensors",
            "the first record of " + input_files[0] + " does not fit the schema: " + s.message());
      }
    }
  }

  return problems;
}

}  // namespace baton::infer
