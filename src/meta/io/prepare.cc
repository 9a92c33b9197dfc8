#include "meta/io/prepare.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "common/files.h"
#include "common/safe_text.h"
#include "infer/row_parser.h"
#include "meta/io/episode_file.h"

namespace baton::meta {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// A value quoted in an error message: safe to show, and short.
std::string Quote(std::string_view value) { return "\"" + SafeText(value, 60) + "\""; }

// A CSV field (RFC 4180): quoted when it holds a comma, a quote or a line break.
std::string CsvField(std::string_view value) {
  if (value.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

template <typename T>
Status ParseNumber(std::string_view text, const std::string& column, T* out) {
  std::string_view s = Trim(text);
  if (s.empty()) return Status::InvalidArgument("column " + column + ": empty value");
  if (s.front() == '+') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(*out)) {
    return Status::InvalidArgument("column " + column + ": expected a finite number, got " +
                                   Quote(text));
  }
  return Status::Ok();
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == y;
         });
}

Status ParseLabel(std::string_view text, const std::string& column, float* out) {
  std::string_view s = Trim(text);
  if (EqualsIgnoreCase(s, "true")) {
    *out = 1;
    return Status::Ok();
  }
  if (EqualsIgnoreCase(s, "false")) {
    *out = 0;
    return Status::Ok();
  }
  double v = 0;
  if (!ParseNumber(s, column, &v).ok() || (v != 0 && v != 1)) {
    return Status::InvalidArgument(
        "column " + column + ": the label must be 0 or 1 (or true/false), got " + Quote(text));
  }
  *out = static_cast<float>(v);
  return Status::Ok();
}

// One parsed row, reused from row to row.
struct Row {
  std::string task;
  float label = 0;
  double order = 0;
  std::vector<float> dense;
  std::vector<int64_t> sparse;
};

// A task's good rows, in file order.
struct TaskRows {
  std::vector<float> dense;
  std::vector<int64_t> sparse;
  std::vector<float> labels;
  std::vector<double> order;
  size_t rows() const { return labels.size(); }
};

class RowReader {
 public:
  explicit RowReader(const PrepareOptions& o) : o_(o) {
    row_.dense.resize(o.dense.size());
    row_.sparse.resize(o.sparse.size());
  }

  // CSV: maps the needed columns to positions in the header `columns` of `file`.
  Status SetHeader(const std::vector<std::string>& columns, const std::string& file) {
    json_ = false;
    width_ = columns.size();
    auto find = [&](const std::string& name, int* pos) -> Status {
      int found = -1;
      for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i] != name) continue;
        if (found >= 0) {
          return Status::InvalidArgument(file + ":1: column " + Quote(name) +
                                         " appears twice in the header");
        }
        found = static_cast<int>(i);
      }
      if (found < 0) {
        std::string have;
        for (const std::string& c : columns) have += (have.empty() ? "" : ", ") + SafeText(c, 60);
        return Status::InvalidArgument(file + ":1: the header has no column " + Quote(name) +
                                       " (it has: " + SafeText(have, 400) + ")");
      }
      *pos = found;
      return Status::Ok();
    };
    BATON_RETURN_IF_ERROR(find(o_.task_key, &task_pos_));
    BATON_RETURN_IF_ERROR(find(o_.label, &label_pos_));
    order_pos_ = -1;
    if (!o_.order_by.empty()) BATON_RETURN_IF_ERROR(find(o_.order_by, &order_pos_));
    dense_pos_.assign(o_.dense.size(), -1);
    sparse_pos_.assign(o_.sparse.size(), -1);
    for (size_t i = 0; i < o_.dense.size(); ++i)
      BATON_RETURN_IF_ERROR(find(o_.dense[i], &dense_pos_[i]));
    for (size_t i = 0; i < o_.sparse.size(); ++i) {
      BATON_RETURN_IF_ERROR(find(o_.sparse[i], &sparse_pos_[i]));
    }
    return Status::Ok();
  }
  void SetJson() { json_ = true; }

  // Parses one line (valid UTF-8 already checked) into row().
  Status Parse(std::string_view line) { return json_ ? ParseJson(line) : ParseCsv(line); }
  const Row& row() const { return row_; }

 private:
  Status ParseCsv(std::string_view line) {
    BATON_RETURN_IF_ERROR(infer::SplitFields(line, ',', &fields_, &storage_));
    if (fields_.size() != width_) {
      return Status::InvalidArgument("expected " + std::to_string(width_) +
                                     " fields (as in the header), got " +
                                     std::to_string(fields_.size()));
    }
    std::string_view task = fields_[task_pos_];
    if (task.empty()) return Status::InvalidArgument("column " + o_.task_key + ": empty task key");
    row_.task.assign(task);
    BATON_RETURN_IF_ERROR(ParseLabel(fields_[label_pos_], o_.label, &row_.label));
    if (order_pos_ >= 0)
      BATON_RETURN_IF_ERROR(ParseNumber(fields_[order_pos_], o_.order_by, &row_.order));
    for (size_t i = 0; i < dense_pos_.size(); ++i) {
      BATON_RETURN_IF_ERROR(ParseNumber(fields_[dense_pos_[i]], o_.dense[i], &row_.dense[i]));
    }
    for (size_t i = 0; i < sparse_pos_.size(); ++i) {
      row_.sparse[i] = SparseId(static_cast<uint32_t>(i), fields_[sparse_pos_[i]]);
    }
    return Status::Ok();
  }

  static Result<const Json*> Field(const Json& j, const std::string& name) {
    auto it = j.find(name);
    if (it == j.end()) return Status::InvalidArgument("field " + name + ": missing");
    return &*it;
  }

  template <typename T>
  static Status JsonNumber(const Json& v, const std::string& name, T* out) {
    if (v.is_string()) return ParseNumber(v.get_ref<const std::string&>(), name, out);
    if (!v.is_number()) {
      return Status::InvalidArgument("field " + name + ": expected a number, got " +
                                     Quote(v.dump()));
    }
    *out = v.get<T>();
    if (!std::isfinite(*out)) {
      return Status::InvalidArgument("field " + name + ": expected a finite number, got " +
                                     Quote(v.dump()));
    }
    return Status::Ok();
  }

  Status ParseJson(std::string_view line) {
    Json j;
    try {
      j = Json::parse(line);
    } catch (const Json::parse_error& e) {
      return Status::InvalidArgument(std::string("not valid JSON: ") + SafeText(e.what(), 160));
    }
    if (!j.is_object()) return Status::InvalidArgument("expected a JSON object");
    BATON_ASSIGN_OR_RETURN(const Json* task, Field(j, o_.task_key));
    if (task->is_string()) {
      row_.task = task->get<std::string>();
    } else if (task->is_number()) {
      row_.task = task->dump();
    } else {
      return Status::InvalidArgument("field " + o_.task_key +
                                     ": expected a string or number, got " + Quote(task->dump()));
    }
    if (row_.task.empty()) {
      return Status::InvalidArgument("field " + o_.task_key + ": empty task key");
    }
    BATON_ASSIGN_OR_RETURN(const Json* label, Field(j, o_.label));
    if (label->is_boolean()) {
      row_.label = label->get<bool>() ? 1.0f : 0.0f;
    } else if (label->is_string()) {
      BATON_RETURN_IF_ERROR(
          ParseLabel(label->get_ref<const std::string&>(), o_.label, &row_.label));
    } else {
      double v = -1;
      if (label->is_number()) v = label->get<double>();
      if (v != 0 && v != 1) {
        return Status::InvalidArgument("field " + o_.label +
                                       ": the label must be 0 or 1 (or true/false), got " +
                                       Quote(label->dump()));
      }
      row_.label = static_cast<float>(v);
    }
    if (!o_.order_by.empty()) {
      BATON_ASSIGN_OR_RETURN(const Json* order, Field(j, o_.order_by));
      BATON_RETURN_IF_ERROR(JsonNumber(*order, o_.order_by, &row_.order));
    }
    for (size_t i = 0; i < o_.dense.size(); ++i) {
      BATON_ASSIGN_OR_RETURN(const Json* v, Field(j, o_.dense[i]));
      BATON_RETURN_IF_ERROR(JsonNumber(*v, o_.dense[i], &row_.dense[i]));
    }
    for (size_t i = 0; i < o_.sparse.size(); ++i) {
      BATON_ASSIGN_OR_RETURN(const Json* v, Field(j, o_.sparse[i]));
      std::string text;
      if (v->is_string()) {
        text = v->get<std::string>();
      } else if (v->is_number() || v->is_boolean()) {
        text = v->dump();
      } else if (!v->is_null()) {
        return Status::InvalidArgument("field " + o_.sparse[i] +
                                       ": expected a string, number, boolean or null, got " +
                                       Quote(v->dump()));
      }
      row_.sparse[i] = SparseId(static_cast<uint32_t>(i), text);
    }
    return Status::Ok();
  }

  const PrepareOptions& o_;
  bool json_ = false;
  size_t width_ = 0;
  int task_pos_ = -1, label_pos_ = -1, order_pos_ = -1;
  std::vector<int> dense_pos_, sparse_pos_;
  std::vector<std::string_view> fields_;
  std::vector<std::string> storage_;
  Row row_;
};

// Lines of a file with their 1-based numbers; a trailing '\r' is dropped.
class LineReader {
 public:
  explicit LineReader(const std::string& path) : in_(path, std::ios::binary) {}
  bool is_open() const { return in_.is_open(); }
  bool Next(std::string* line) {
    if (!std::getline(in_, *line)) return false;
    ++number_;
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }
  bool failed() const { return in_.bad(); }
  uint64_t number() const { return number_; }

 private:
  std::ifstream in_;
  uint64_t number_ = 0;
};

Result<InputFormat> FormatOf(const PrepareOptions& o, const std::string& path) {
  if (o.format != InputFormat::kAuto) return o.format;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".csv") return InputFormat::kCsv;
  if (ext == ".jsonl" || ext == ".ndjson") return InputFormat::kJsonl;
  return Status::InvalidArgument("input " + path + ": cannot tell its format from its extension " +
                                 Quote(ext) + " (.csv, .jsonl or .ndjson); name it (--format)");
}

Status OpenError(const std::string& path) {
  const int err = errno;
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::InvalidArgument("input " + path + ": does not exist");
  return Status::IoError("input " + path + ": cannot read it: " + std::strerror(err));
}

// The header of a CSV input (BOM dropped), checked to be readable.
Result<std::vector<std::string>> ReadHeader(const std::string& path) {
  LineReader in(path);
  if (!in.is_open()) return OpenError(path);
  std::string line;
  if (!in.Next(&line)) {
    if (in.failed()) return Status::IoError("input " + path + ": read failed");
    return Status::InvalidArgument("input " + path + ": empty, expected a header line");
  }
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
  if (!IsValidUtf8(line)) {
    return Status::InvalidArgument(path + ":1: the header is not valid UTF-8");
  }
  std::vector<std::string_view> fields;
  std::vector<std::string> storage;
  Status s = infer::SplitFields(line, ',', &fields, &storage);
  if (!s.ok()) return Status::InvalidArgument(path + ":1: header: " + s.message());
  std::vector<std::string> columns;
  for (std::string_view f : fields) columns.emplace_back(Trim(f));
  return columns;
}

// A JSONL input's first record that is a JSON object must have every field the options name
// (JSONL has no header; this stands in for one).
Status CheckJsonlFields(const PrepareOptions& o, const std::string& path) {
  LineReader in(path);
  if (!in.is_open()) return OpenError(path);
  std::string line;
  while (in.Next(&line)) {
    if (infer::IsBlankLine(line) || !IsValidUtf8(line)) continue;
    Json j = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) continue;
    std::vector<const std::string*> names = {&o.task_key, &o.label};
    if (!o.order_by.empty()) names.push_back(&o.order_by);
    for (const std::string& c : o.dense) names.push_back(&c);
    for (const std::string& c : o.sparse) names.push_back(&c);
    for (const std::string* name : names) {
      if (!j.contains(*name)) {
        return Status::InvalidArgument(path + ":" + std::to_string(in.number()) +
                                       ": the first record has no field " + Quote(*name));
      }
    }
    return Status::Ok();
  }
  if (in.failed()) return Status::IoError("input " + path + ": read failed");
  return Status::Ok();
}

Status CheckOptions(const PrepareOptions& o, const std::string& errors_path) {
  if (o.inputs.empty()) return Status::InvalidArgument("no input files");
  if (o.output.empty()) return Status::InvalidArgument("no output path");
  if (o.task_key.empty()) return Status::InvalidArgument("no task key column");
  if (o.label.empty()) return Status::InvalidArgument("no label column");
  if (o.dense.empty() && o.sparse.empty()) {
    return Status::InvalidArgument("no feature columns: name dense and/or sparse columns");
  }
  auto no_repeats = [](const std::vector<std::string>& list, const char* what) -> Status {
    std::set<std::string> seen;
    for (const std::string& c : list) {
      if (c.empty()) return Status::InvalidArgument(std::string("empty column name in ") + what);
      if (!seen.insert(c).second) {
        return Status::InvalidArgument(std::string(what) + " column " + Quote(c) + " named twice");
      }
    }
    return Status::Ok();
  };
  BATON_RETURN_IF_ERROR(no_repeats(o.dense, "dense"));
  BATON_RETURN_IF_ERROR(no_repeats(o.sparse, "sparse"));
  for (const auto* list : {&o.dense, &o.sparse}) {
    if (std::find(list->begin(), list->end(), o.label) != list->end()) {
      return Status::InvalidArgument("the label column " + Quote(o.label) +
                                     " is also a feature column");
    }
  }
  if (!(o.support_fraction > 0 && o.support_fraction < 1)) {
    return Status::InvalidArgument("support fraction " + std::to_string(o.support_fraction) +
                                   " must lie strictly between 0 and 1");
  }
  if (o.min_rows < 2) {
    return Status::InvalidArgument("min rows " + std::to_string(o.min_rows) +
                                   " must be at least 2 (one support and one query row)");
  }
  if (o.progress && o.progress_every == 0) {
    return Status::InvalidArgument("progress_every must be positive");
  }
  std::error_code ec;
  const fs::path out = fs::absolute(o.output, ec);
  const fs::path err = fs::absolute(errors_path, ec);
  if (out == err) return Status::InvalidArgument("the errors file is the output file");
  for (const std::string& in : o.inputs) {
    const fs::path p = fs::absolute(in, ec);
    if (p == out || p == err) {
      return Status::InvalidArgument("input " + in + " is also an output");
    }
  }
  return Status::Ok();
}

// The errors file: written beside its target and renamed at the end.
class ErrorsFile {
 public:
  ~ErrorsFile() {
    if (file_) std::fclose(file_);
    if (!tmp_.empty()) ::unlink(tmp_.c_str());
  }
  Status Open(const std::string& path) {
    path_ = path;
    std::string tmpl = path + ".tmp.XXXXXX";
    int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
    if (fd < 0)
      return Status::IoError("cannot create a file beside " + path + ": " + std::strerror(errno));
    (void)::fchmod(fd, 0644);
    tmp_ = tmpl;
    file_ = ::fdopen(fd, "w");
    if (!file_) {
      ::close(fd);
      return Status::IoError("fdopen " + tmp_ + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }
  void Add(const std::string& file, uint64_t line, const std::string& error) {
    nlohmann::ordered_json j;
    j["file"] = file;
    j["line"] = line;
    j["error"] = error;
    const std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) write_failed_ = true;
  }
  Status Finish() {
    bool ok = !write_failed_ && std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
    ok = std::fclose(file_) == 0 && ok;
    file_ = nullptr;
    if (!ok) return Status::IoError("writing " + tmp_ + " (for " + path_ + ") failed");
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Status::IoError("rename " + tmp_ + " to " + path_ + ": " + std::strerror(errno));
    }
    tmp_.clear();
    return Status::Ok();
  }

 private:
  std::string path_;
  std::string tmp_;
  FILE* file_ = nullptr;
  bool write_failed_ = false;
};

}  // namespace

int64_t SparseId(uint32_t field, std::string_view value) {
  const uint64_t h = XXH3_64bits_withSeed(value.data(), value.size(), field);
  return static_cast<int64_t>(h & 0x7FFFFFFFFFFFFFFFULL);
}

bool IsValidUtf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char b0 = p[i];
    if (b0 < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2, cp = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3, cp = b0 & 0x0Fu;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4, cp = b0 & 0x07u;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (p[i + k] & 0x3Fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

Result<PrepareSummary> Prepare(const PrepareOptions& o) {
  PrepareSummary summary;
  summary.output = o.output;
  summary.errors_path = o.errors_path.empty() ? o.output + ".errors.jsonl" : o.errors_path;
  BATON_RETURN_IF_ERROR(CheckOptions(o, summary.errors_path));

  // Everything that can be checked before reading rows: formats, headers, first JSONL records.
  std::vector<InputFormat> formats;
  std::vector<std::vector<std::string>> headers(o.inputs.size());
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    BATON_ASSIGN_OR_RETURN(InputFormat f, FormatOf(o, o.inputs[i]));
    formats.push_back(f);
    if (f == InputFormat::kCsv) {
      BATON_ASSIGN_OR_RETURN(headers[i], ReadHeader(o.inputs[i]));
      RowReader probe(o);
      BATON_RETURN_IF_ERROR(probe.SetHeader(headers[i], o.inputs[i]));
    } else {
      BATON_RETURN_IF_ERROR(CheckJsonlFields(o, o.inputs[i]));
    }
  }

  // Both outputs are opened (as temporary files) before the long read, so that an unwritable
  // directory fails now.
  BATON_ASSIGN_OR_RETURN(EpisodeFileWriter writer,
                         EpisodeFileWriter::Open(o.output, static_cast<uint32_t>(o.dense.size()),
                                                 static_cast<uint32_t>(o.sparse.size())));
  ErrorsFile errors;
  BATON_RETURN_IF_ERROR(errors.Open(summary.errors_path));

  std::unordered_map<std::string, TaskRows> tasks;
  RowReader reader(o);
  std::string line;
  for (size_t i = 0; i < o.inputs.size(); ++i) {
    const std::string& path = o.inputs[i];
    LineReader in(path);
    if (!in.is_open()) return OpenError(path);
    if (formats[i] == InputFormat::kCsv) {
      BATON_RETURN_IF_ERROR(reader.SetHeader(headers[i], path));
      in.Next(&line);  // the header
    } else {
      reader.SetJson();
    }
    while (in.Next(&line)) {
      if (infer::IsBlankLine(line)) continue;
      ++summary.rows_read;
      if (o.progress && summary.rows_read % o.progress_every == 0) o.progress(summary.rows_read);
      Status s = IsValidUtf8(line) ? reader.Parse(line)
                                   : Status::InvalidArgument("the row is not valid UTF-8");
      if (!s.ok()) {
        ++summary.bad_rows;
        errors.Add(path, in.number(), s.message());
        continue;
      }
      const Row& r = reader.row();
      TaskRows& t = tasks[r.task];
      t.dense.insert(t.dense.end(), r.dense.begin(), r.dense.end());
      t.sparse.insert(t.sparse.end(), r.sparse.begin(), r.sparse.end());
      t.labels.push_back(r.label);
      if (!o.order_by.empty()) t.order.push_back(r.order);
    }
    if (in.failed()) return Status::IoError("input " + path + ": read failed");
  }

  // Episode order: by task id, or a seeded shuffle of that.
  std::vector<const std::pair<const std::string, TaskRows>*> order;
  order.reserve(tasks.size());
  for (const auto& entry : tasks) {
    if (entry.second.rows() < o.min_rows) {
      ++summary.tasks_skipped;
      summary.rows_skipped += entry.second.rows();
      continue;
    }
    order.push_back(&entry);
  }
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->first < b->first; });
  if (o.seed) {
    std::mt19937_64 rng(*o.seed);
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  }

  const size_t nd = o.dense.size(), ns = o.sparse.size();
  std::string index = "episode,task\n";  // the episode file's index as records (kind: meta's input)
  std::vector<size_t> perm;
  Episode e;
  e.num_dense = static_cast<uint32_t>(nd);
  e.num_sparse = static_cast<uint32_t>(ns);
  for (const auto* entry : order) {
    const TaskRows& t = entry->second;
    const size_t n = t.rows();
    if (n > UINT32_MAX) {
      return Status::InvalidArgument("task " + Quote(entry->first) + " has " + std::to_string(n) +
                                     " rows, more than an episode holds (2^32 - 1)");
    }
    perm.resize(n);
    std::iota(perm.begin(), perm.end(), size_t{0});
    if (!o.order_by.empty()) {
      std::stable_sort(perm.begin(), perm.end(),
                       [&](size_t a, size_t b) { return t.order[a] < t.order[b]; });
    }
    size_t support = static_cast<size_t>(std::floor(static_cast<double>(n) * o.support_fraction));
    support = std::clamp<size_t>(support, 1, n - 1);
    // Caps keep the rows next to the boundary: the last support rows, the first query rows.
    size_t first = 0, last = n;
    if (o.max_support > 0 && support > o.max_support) first = support - o.max_support;
    if (o.max_query > 0 && n - support > o.max_query) last = support + o.max_query;
    summary.rows_capped += n - (last - first);
    e.task_id = entry->first;
    e.num_support = static_cast<uint32_t>(support - first);
    e.num_query = static_cast<uint32_t>(last - support);
    e.dense.clear();
    e.sparse.clear();
    e.labels.clear();
    for (size_t k = first; k < last; ++k) {
      const size_t r = perm[k];
      e.dense.insert(e.dense.end(), t.dense.begin() + r * nd, t.dense.begin() + (r + 1) * nd);
      e.sparse.insert(e.sparse.end(), t.sparse.begin() + r * ns, t.sparse.begin() + (r + 1) * ns);
      e.labels.push_back(t.labels[r]);
    }
    BATON_RETURN_IF_ERROR(writer.Append(e));
    index += std::to_string(summary.tasks_written) + "," + CsvField(e.task_id) + "\n";
    ++summary.tasks_written;
    summary.support_rows += e.num_support;
    summary.query_rows += e.num_query;
  }
  BATON_RETURN_IF_ERROR(writer.Finish());
  BATON_RETURN_IF_ERROR(errors.Finish());
  summary.index_path = o.output + ".index.csv";
  BATON_RETURN_IF_ERROR(WriteFileAtomic(summary.index_path, index));
  return summary;
}

}  // namespace baton::meta
