#include "infer/record_schema.h"

#include <charconv>
#include <optional>
#include <utility>

#include "spec/spec_problems.h"

namespace baton::infer {
namespace {

using schema::Describe;
using schema::Field;
using schema::LineOf;
using schema::Quote;
using schema::Reader;
using schema::Section;

constexpr std::string_view kTensorKeys[] = {"name", "type", "columns"};

// "d0..d12" → d0..d12; anything else → itself. nullopt when it looks like a range but is not one.
std::optional<std::vector<std::string>> ExpandColumns(const std::string& s) {
  size_t dots = s.find("..");
  if (dots == std::string::npos) return std::vector<std::string>{s};
  auto split = [](std::string_view t) -> std::optional<std::pair<std::string, int64_t>> {
    size_t i = t.size();
    while (i > 0 && t[i - 1] >= '0' && t[i - 1] <= '9') --i;
    if (i == t.size()) return std::nullopt;
    int64_t v = 0;
    std::from_chars(t.data() + i, t.data() + t.size(), v);
    return std::make_pair(std::string(t.substr(0, i)), v);
  };
  auto a = split(std::string_view(s).substr(0, dots));
  auto b = split(std::string_view(s).substr(dots + 2));
  if (!a || !b || a->first != b->first || b->second < a->second || b->second - a->second > 100000) {
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (int64_t v = a->second; v <= b->second; ++v) out.push_back(a->first + std::to_string(v));
  return out;
}

// A non-empty list of non-empty strings; with expand_ranges, items like "d0..d12" expand.
bool ReadNameListImpl(Reader& r, const Section& s, std::string_view key,
                      std::vector<std::string>* out, bool expand_ranges) {
  const Field* f = s.Find(key);
  if (f == nullptr) return true;
  if (!f->value.IsSequence() || f->value.size() == 0) {
    return r.Wrong(s, key, "a non-empty list of strings");
  }
  const int line = LineOf(f->key, s.line);
  bool ok = true;
  for (size_t i = 0; i < f->value.size(); ++i) {
    const YAML::Node item = f->value[i];
    const std::string item_key = s.KeyPath(key) + "[" + std::to_string(i) + "]";
    if (!item.IsScalar() || item.Scalar().empty()) {
      r.problems().Expected(LineOf(item, line), item_key, "a non-empty string", Describe(item));
      ok = false;
      continue;
    }
    if (!expand_ranges) {
      out->push_back(item.Scalar());
      continue;
    }
    auto expanded = ExpandColumns(item.Scalar());
    if (!expanded) {
      r.problems().Expected(LineOf(item, line), item_key,
                            "a column name or a range like d0..d12 (same prefix, ascending)",
                            Describe(item));
      ok = false;
      continue;
    }
    out->insert(out->end(), expanded->begin(), expanded->end());
  }
  return ok;
}

}  // namespace

bool ReadNameList(Reader& r, const Section& s, std::string_view key, std::vector<std::string>* out,
                  bool expand_ranges) {
  return ReadNameListImpl(r, s, key, out, expand_ranges);
}

void ReadRecordFormat(Reader& r, const Section& input, std::string_view kind, bool allow_images,
                      RecordSchema* out) {
  SpecProblems& p = r.problems();
  const std::string rule =
      std::string(allow_images ? "one of csv, tsv, jsonl, images" : "one of csv, tsv, jsonl") +
      " for kind: " + std::string(kind);
  std::string format;
  r.String(input, "format", &format);
  if (format == "csv") {
    out->input = InputKind::kCsv;
  } else if (format == "tsv") {
    out->input = InputKind::kTsv;
  } else if (format == "jsonl") {
    out->input = InputKind::kJsonl;
  } else if (format == "images" && allow_images) {
    out->input = InputKind::kImages;
  } else {
    p.Expected(r.LineOfKey(input, "format"), "input.format", rule,
               format.empty() ? "nothing" : Quote(format));
  }
  r.Bool(input, "skip_header", &out->input_has_header);
}

void ReadRecordColumns(Reader& r, const Section& s, RecordSchema* out) {
  SpecProblems& p = r.problems();
  if (!s.Has("key")) {
    if (out->input != InputKind::kImages) {
      p.Add(s.line, s.KeyPath("key"), "missing (expected the column that identifies a row)");
    }
  } else {
    r.String(s, "key", &out->key);
  }
  ReadNameList(r, s, "header", &out->header, true);
  if (out->input == InputKind::kCsv || out->input == InputKind::kTsv) {
    if (!out->input_has_header && out->header.empty() && !s.Has("header")) {
      p.Add(s.line, s.KeyPath("header"),
            "missing (the input has no header line: set input.skip_header: true if it has "
            "one, or list the column names here)");
    }
  }

  if (out->input != InputKind::kImages) {
    const Field* tensors = s.Find("tensors");
    if (tensors == nullptr || !tensors->value.IsSequence() || tensors->value.size() == 0) {
      p.Expected(r.LineOfKey(s, "tensors"), s.KeyPath("tensors"),
                 "a non-empty list of {name, type, columns}: the model's inputs",
                 tensors != nullptr ? Describe(tensors->value) : "nothing");
    } else {
      for (size_t i = 0; i < tensors->value.size(); ++i) {
        const YAML::Node item = tensors->value[i];
        const std::string key = s.KeyPath("tensors") + "[" + std::to_string(i) + "]";
        const Section t = r.Open(item, key, LineOf(item, s.line), kTensorKeys);
        if (t.malformed) continue;
        TensorSpec ts;
        ts.line = t.line;
        r.String(t, "name", &ts.name);
        if (ts.name.empty()) ts.name = "input" + std::to_string(i);
        std::string type = "float32";
        if (r.String(t, "type", &type)) {
          if (type == "float32" || type == "float") {
            ts.type = TensorType::kFloat32;
          } else if (type == "int64" || type == "long") {
            ts.type = TensorType::kInt64;
          } else {
            r.Wrong(t, "type", "one of float32, int64");
          }
        }
        if (!t.Has("columns")) {
          p.Add(ts.line, key + ".columns", "missing (expected a list of column names)");
        } else {
          ReadNameList(r, t, "columns", &ts.columns, true);
        }
        out->tensors.push_back(std::move(ts));
      }
    }
  } else if (s.Has("tensors")) {
    p.Add(r.LineOfKey(s, "tensors"), s.KeyPath("tensors"),
          "not used with input.format: images (see infer.image)");
  }
}

}  // namespace baton::infer
