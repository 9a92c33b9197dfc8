#include "infer/output_format.h"

#include <charconv>

#include <nlohmann/json.hpp>

namespace baton::infer {
namespace {

void AppendNumber(float v, std::string* out) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
}

void AppendNumber(int64_t v, std::string* out) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, end);
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

void AppendJsonString(const std::string& s, std::string* out) {
  out->append(nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void AppendValues(const HostTensor& t, int64_t row, char sep, std::string* out) {
  const int64_t w = t.row_width();
  for (int64_t k = 0; k < w; ++k) {
    if (k > 0) out->push_back(sep);
    const size_t at = static_cast<size_t>(row * w + k);
    if (t.type == TensorType::kFloat32) {
      AppendNumber(t.f[at], out);
    } else {
      AppendNumber(t.i[at], out);
    }
  }
}

}  // namespace

void AppendOutputRow(OutputFormat format, const RowRef& ref, const std::vector<HostTensor>& outputs,
                     int64_t row, const std::vector<std::string>& output_names, std::string* out) {
  if (format == OutputFormat::kCsv) {
    AppendCsvField(*ref.key, out);
    if (ref.model != nullptr) {
      out->push_back(',');
      out->append(*ref.model);
      out->push_back(',');
      AppendNumber(static_cast<int64_t>(ref.item), out);
    }
    for (const HostTensor& t : outputs) {
      out->push_back(',');
      AppendValues(t, row, ',', out);
    }
    out->push_back('\n');
    return;
  }
  out->append("{\"key\":");
  AppendJsonString(*ref.key, out);
  if (ref.model != nullptr) {
    out->append(",\"model\":");
    AppendJsonString(*ref.model, out);
    out->append(",\"item\":");
    AppendNumber(static_cast<int64_t>(ref.item), out);
  }
  for (size_t o = 0; o < outputs.size(); ++o) {
    out->push_back(',');
    AppendJsonString(o < output_names.size() ? output_names[o] : "out" + std::to_string(o), out);
    out->push_back(':');
    const HostTensor& t = outputs[o];
    if (t.row_width() == 1) {
      AppendValues(t, row, ',', out);
    } else {
      out->push_back('[');
      AppendValues(t, row, ',', out);
      out->push_back(']');
    }
  }
  out->append("}\n");
}

std::string ErrorRow(const std::string& file, uint64_t record, const std::string& key,
                     const std::string& stage, const std::string& message) {
  nlohmann::json j = {
      {"file", file}, {"record", record}, {"key", key}, {"stage", stage}, {"error", message}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace baton::infer
