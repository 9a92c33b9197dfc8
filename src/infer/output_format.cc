#include "infer/output_format.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "common/files.h"
#include "infer/json_text.h"

namespace baton::infer {
namespace {

void AppendNumber(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

// A finite float in its shortest round-trip form; NaN and infinities by `policy` (never kError
// here: such rows are refused before anything is written).
void AppendFloat(float v, OutputFormat format, NonFinite policy, std::string* out) {
  if (std::isfinite(v)) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out->append(buf, end);
    return;
  }
  const bool json = format == OutputFormat::kJsonl;
  if (policy != NonFinite::kString) {
    if (json) out->append("null");  // CSV: an empty field
    return;
  }
  const char* name = std::isnan(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (json) out->push_back('"');
  out->append(name);
  if (json) out->push_back('"');
}

void AppendCsvField(const std::string& s, std::string* out) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendValues(const HostTensor& t, int64_t row, const OutputStyle& style, std::string* out) {
  const int64_t w = t.row_width();
  for (int64_t k = 0; k < w; ++k) {
    if (k > 0) out->push_back(',');
    const size_t at = static_cast<size_t>(row * w + k);
    if (t.type == TensorType::kFloat32) {
      AppendFloat(t.f[at], style.format, style.non_finite, out);
    } else {
      AppendNumber(t.i[at], out);
    }
  }
}

std::string OutputName(const std::vector<std::string>& names, size_t o) {
  return o < names.size() ? names[o] : "out" + std::to_string(o);
}

// NaN and infinite values in row `row` of the outputs; `first` describes the first one.
int64_t CountNonFinite(const std::vector<HostTensor>& outputs, int64_t row,
                       const std::vector<std::string>& names, std::string* first) {
  int64_t n = 0;
  for (size_t o = 0; o < outputs.size(); ++o) {
    const HostTensor& t = outputs[o];
    if (t.type != TensorType::kFloat32) continue;
    const int64_t w = t.row_width();
    for (int64_t k = 0; k < w; ++k) {
      const float v = t.f[static_cast<size_t>(row * w + k)];
      if (std::isfinite(v)) continue;
      if (n++ == 0) {
        *first = "output " + OutputName(names, o) + (w == 1 ? "" : "[" + std::to_string(k) + "]") +
                 " is " +
                 (std::isnan(v) ? "NaN"
                  : v > 0       ? "+infinity"
                                : "-infinity");
      }
    }
  }
  return n;
}

}  // namespace

Result<int64_t> AppendOutputRow(const OutputStyle& style, const RowRef& ref,
                                const std::vector<HostTensor>& outputs, int64_t row,
                                const std::vector<std::string>& output_names, std::string* out) {
  std::string first;
  const int64_t non_finite = CountNonFinite(outputs, row, output_names, &first);
  if (non_finite > 0 && style.non_finite == NonFinite::kError) {
    return Status::InvalidArgument(first + " (infer.non_finite: error)");
  }
  if (style.format == OutputFormat::kCsv) {
    AppendCsvField(*ref.key, out);
    if (ref.model != nullptr) {
      out->push_back(',');
      out->append(*ref.model);
      out->push_back(',');
      AppendNumber(static_cast<int64_t>(ref.item), out);
    }
    for (const HostTensor& t : outputs) {
      out->push_back(',');
      AppendValues(t, row, style, out);
    }
    out->push_back('\n');
    return non_finite;
  }
  out->push_back('{');
  AppendJsonBytesField("key", *ref.key, out);
  if (ref.model != nullptr) {
    out->append(",\"model\":");
    AppendJsonString(*ref.model, out);  // [A-Za-z0-9_-]+ (infer_spec.h)
    out->append(",\"item\":");
    AppendNumber(static_cast<int64_t>(ref.item), out);
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    out->push_back(',');
    AppendJsonString(OutputName(output_names, o), out);  // valid UTF-8 (infer_spec.cc)
    out->push_back(':');
    const HostTensor& t = outputs[o];
    if (t.row_width() == 1) {
      AppendValues(t, row, style, out);
    } else {
      out->push_back('[');
      AppendValues(t, row, style, out);
      out->push_back(']');
    }
  }
  out->append("}\n");
  return non_finite;
}

std::string ErrorRow(const std::string& file, uint64_t record, const std::string& key,
                     const std::string& stage, const std::string& message) {
  // Fields in name order, as earlier versions wrote them (with a JSON library's sorted keys).
  std::string out = "{\"error\":";
  AppendJsonString(ReadableText(message), &out);
  out.push_back(',');
  AppendJsonBytesField("file", file, &out);
  out.push_back(',');
  AppendJsonBytesField("key", key, &out);
  out.append(",\"record\":");
  AppendNumber(static_cast<int64_t>(record), &out);
  out.append(",\"stage\":");
  AppendJsonString(ReadableText(stage), &out);
  out.append("}\n");
  return out;
}

Status WriteShardErrors(const std::string& errors_dir, uint64_t shard_id,
                        const std::string& errors) {
  char name[64];
  std::snprintf(name, sizeof name, "/part-%08llu.errors.jsonl",
                static_cast<unsigned long long>(shard_id));
  const std::string path = errors_dir + name;
  std::error_code ec;
  if (errors.empty()) {
    std::filesystem::remove(path, ec);
    return Status::Ok();
  }
  std::filesystem::create_directories(errors_dir, ec);
  return WriteFileAtomic(path, errors);
}

}  // namespace baton::infer
