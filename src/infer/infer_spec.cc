#include "infer/infer_spec.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "infer/json_text.h"
#include "spec/schema_reader.h"
#include "spec/spec_problems.h"

namespace baton::infer {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kInferKeys[] = {"key",
                                           "header",
                                           "tensors",
                                           "image",
                                           "models",
                                           "pipeline",
                                           "intra_op_threads",
                                           "device",
                                           "max_error_rate",
                                           "predict_timeout_ms",
                                           "memory_limit_mb",
                                           "non_finite"};
constexpr std::string_view kTensorKeys[] = {"name", "type", "columns"};
constexpr std::string_view kImageKeys[] = {"width", "height", "mean", "std"};
constexpr std::string_view kModelKeys[] = {
    "name",       "path",       "after",   "emit", "score_threshold", "crop_width", "crop_height",
    "batch_size", "predictors", "outputs", "write"};
constexpr std::string_view kPipelineKeys[] = {
    "mode",        "readers",           "preprocessors",
    "writers",     "autoscale",         "autoscale_period_ms",
    "max_readers", "max_preprocessors", "max_predictors",
    "max_writers", "queue_batches",     "max_batch_wait_ms"};

// The sections the infer reader owns, for "did you mean infer.pipeline.readers" hints when a key
// is put at the wrong level.
constexpr schema::SectionKeys kInferSchema[] = {
    {"infer", kInferKeys},
    {"infer.image", kImageKeys},
    {"infer.pipeline", kPipelineKeys},
};

using Problems = SpecProblems;
using schema::Describe;
using schema::Field;
using schema::LineOf;
using schema::Quote;
using schema::Reader;
using schema::Section;

bool IsName(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

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
bool NameList(Reader& r, const Section& s, std::string_view key, std::vector<std::string>* out,
              bool expand_ranges) {
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

void ReadFloat3(Reader& r, const Section& s, std::string_view k, std::array<float, 3>* out) {
  const Field* f = s.Find(k);
  if (f == nullptr) return;
  if (!f->value.IsSequence() || f->value.size() != 3) {
    r.Wrong(s, k, "a list of 3 numbers (R, G, B)");
    return;
  }
  for (size_t i = 0; i < 3; ++i) {
    std::optional<double> v = schema::ParseNumber(f->value[i]);
    if (!v || (k == "std" && *v <= 0)) {
      r.Wrong(s, k, k == "std" ? "3 positive numbers" : "3 numbers");
      return;
    }
    (*out)[i] = static_cast<float>(*v);
  }
}

void ReadModel(Reader& r, const YAML::Node& n, size_t index, const fs::path& base,
               InferSpec& spec) {
  Problems& p = r.problems();
  const std::string key = "infer.models[" + std::to_string(index) + "]";
  const int line = LineOf(n, 1);
  if (!n.IsMap()) {
    p.Expected(line, key, "a mapping with name and path", Describe(n));
    return;
  }
  Section m = r.Open(n, key, line, kModelKeys);
  ModelSpec model;
  model.line = line;
  constexpr std::string_view kNameRule = "a model name matching [A-Za-z0-9_-]+";
  if (!m.Has("name")) {
    p.Add(line, key + ".name", "missing (expected a model name)");
  } else if (r.String(m, "name", &model.name, kNameRule) && !IsName(model.name)) {
    r.Wrong(m, "name", kNameRule);
  }
  if (!m.Has("path")) {
    p.Add(line, key + ".path", "missing (expected a TorchScript model file)");
  } else if (r.String(m, "path", &model.path)) {
    model.path = (fs::path(model.path).is_absolute() ? fs::path(model.path) : base / model.path)
                     .lexically_normal()
                     .string();
  }
  r.String(m, "after", &model.after);
  std::string emit = "outputs";
  if (r.String(m, "emit", &emit)) {
    if (emit == "outputs") {
      model.emit = EmitKind::kOutputs;
    } else if (emit == "crops") {
      model.emit = EmitKind::kCrops;
    } else {
      r.Wrong(m, "emit", "one of outputs, crops");
    }
  }
  double threshold = model.score_threshold;
  if (r.Number(m, "score_threshold", 0.0, 1.0, &threshold)) {
    model.score_threshold = static_cast<float>(threshold);
  }
  r.Int(m, "crop_width", 1, &model.crop_width);
  r.Int(m, "crop_height", 1, &model.crop_height);
  r.Int(m, "batch_size", 1, &model.batch_size);
  r.Int(m, "predictors", 1, &model.predictors);
  if (m.Has("outputs")) {
    NameList(r, m, "outputs", &model.outputs, false);
    // Output names become JSONL field names: two equal ones, or one equal to a field the writer
    // adds, would make a row with a duplicate field whose values readers merge.
    const int outputs_line = r.LineOfKey(m, "outputs");
    std::set<std::string> seen;
    for (const std::string& o : model.outputs) {
      if (!IsName(o)) {
        p.Add(outputs_line, key + ".outputs",
              "\"" + ReadableText(o) + "\" is not a name ([A-Za-z0-9_-]+)");
      } else if (o == "key" || o == "key_base64" || o == "model" || o == "item") {
        p.Add(outputs_line, key + ".outputs",
              "\"" + o + "\" is a field every output row has (key, key_base64, model, item)");
      } else if (!seen.insert(o).second) {
        p.Add(outputs_line, key + ".outputs", "\"" + o + "\" names two outputs");
      }
    }
  }
  model.write_set = m.Has("write");
  r.Bool(m, "write", &model.write);
  spec.models.push_back(std::move(model));
}

// A section of the control plane (input, output): the job spec reports its problems; the infer
// reader reads the values it needs with the same rules.
Section Borrowed(Reader& r, const Section& top, std::string_view key) {
  const Field* f = top.Find(key);
  if (f == nullptr) return Section{std::string(key), top.line, {}, false};
  return r.Borrow(f->value, std::string(key), LineOf(f->key, top.line));
}

// Orders models root first, parents before children; reports a missing or second root, unknown
// parents and cycles.
void CheckGraph(Problems& p, InferSpec& spec) {
  std::set<std::string> names;
  int roots = 0;
  for (size_t i = 0; i < spec.models.size(); ++i) {
    const ModelSpec& m = spec.models[i];
    const std::string key = "infer.models[" + std::to_string(i) + "]";
    if (!m.name.empty() && !names.insert(m.name).second) {
      p.Add(m.line, key + ".name", "\"" + m.name + "\" names two models");
    }
    if (m.after.empty()) ++roots;
  }
  for (size_t i = 0; i < spec.models.size(); ++i) {
    const ModelSpec& m = spec.models[i];
    if (!m.after.empty() && !names.count(m.after)) {
      p.Expected(m.line, "infer.models[" + std::to_string(i) + "].after",
                 "the name of another model", "\"" + m.after + "\"");
      return;
    }
    if (m.after == m.name && !m.name.empty()) {
      p.Add(m.line, "infer.models[" + std::to_string(i) + "].after",
            "a model cannot follow itself");
      return;
    }
  }
  if (roots != 1) {
    p.Add(spec.models.empty() ? 1 : spec.models[0].line, "infer.models",
          "expected exactly one model without `after` (the first to run), got " +
              std::to_string(roots));
    return;
  }
  // Topological order: repeatedly take models whose parent is placed.
  std::vector<ModelSpec> ordered;
  std::set<std::string> placed;
  std::vector<bool> taken(spec.models.size(), false);
  for (size_t round = 0; round < spec.models.size(); ++round) {
    for (size_t i = 0; i < spec.models.size(); ++i) {
      if (taken[i]) continue;
      const ModelSpec& m = spec.models[i];
      if (m.after.empty() || placed.count(m.after)) {
        ordered.push_back(m);
        placed.insert(m.name);
        taken[i] = true;
      }
    }
  }
  if (ordered.size() != spec.models.size()) {
    p.Add(spec.models[0].line, "infer.models", "the `after` links form a cycle");
    return;
  }
  spec.models = std::move(ordered);
  for (size_t i = 0; i < spec.models.size(); ++i) {
    ModelSpec& m = spec.models[i];
    if (!m.write_set) m.write = ChildrenOf(spec, static_cast<int>(i)).empty();
    if (i > 0 && m.emit == EmitKind::kCrops && spec.input != InputKind::kImages) {
      p.Expected(m.line, "infer.models." + m.name + ".emit",
                 "emit: crops only with input.format: images", "crops");
    }
  }
}

}  // namespace

int ModelIndex(const InferSpec& spec, const std::string& name) {
  for (size_t i = 0; i < spec.models.size(); ++i) {
    if (spec.models[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::vector<int> ChildrenOf(const InferSpec& spec, int parent) {
  std::vector<int> out;
  for (size_t i = 0; i < spec.models.size(); ++i) {
    if (!spec.models[i].after.empty() && ModelIndex(spec, spec.models[i].after) == parent) {
      out.push_back(static_cast<int>(i));
    }
  }
  return out;
}

Result<InferSpec> ParseInferSpec(const std::string& yaml_text, const std::string& spec_path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(spec_path + ":" + std::to_string(e.mark.line + 1) +
                                   ": malformed YAML: " + e.msg);
  }
  InferSpec spec;
  std::error_code ec;
  const fs::path absolute = fs::absolute(spec_path, ec).lexically_normal();
  spec.spec_path = absolute.string();
  const fs::path base = absolute.parent_path();
  Problems p(spec_path);
  Reader r(&p, kInferSchema);
  try {
    if (!root.IsMap()) return Status::InvalidArgument(spec_path + ":1: expected a mapping");
    const Section top = r.Borrow(root, "", 1);
    // The parts of the control-plane sections the worker needs (validated by the job spec).
    const Section input = Borrowed(r, top, "input");
    std::string format;
    r.String(input, "format", &format);
    if (format == "csv") {
      spec.input = InputKind::kCsv;
    } else if (format == "tsv") {
      spec.input = InputKind::kTsv;
    } else if (format == "jsonl") {
      spec.input = InputKind::kJsonl;
    } else if (format == "images") {
      spec.input = InputKind::kImages;
    } else {
      p.Expected(r.LineOfKey(input, "format"), "input.format",
                 "one of csv, tsv, jsonl, images for kind: infer",
                 format.empty() ? "nothing" : Quote(format));
    }
    r.Bool(input, "skip_header", &spec.input_has_header);
    const Section output = Borrowed(r, top, "output");
    const Field* dir = output.Find("dir");
    if (dir == nullptr || !dir->value.IsScalar()) {
      p.Add(r.LineOfKey(output, "dir"), "output.dir",
            "missing (kind: infer writes one part file per shard there)");
    } else {
      const std::string& d = dir->value.Scalar();
      spec.output_dir =
          (fs::path(d).is_absolute() ? fs::path(d) : base / d).lexically_normal().string();
      spec.errors_dir = spec.output_dir + "/_errors";
    }
    std::string suffix = ".jsonl";
    r.String(output, "suffix", &suffix);
    if (suffix == ".csv") {
      spec.output = OutputFormat::kCsv;
    } else if (suffix == ".jsonl" || suffix.empty()) {
      spec.output = OutputFormat::kJsonl;
    } else {
      p.Expected(r.LineOfKey(output, "suffix"), "output.suffix",
                 "\".csv\" or \".jsonl\" for kind: infer (it picks the output format)",
                 Quote(suffix));
    }

    const Field* infer_field = top.Find("infer");
    if (infer_field == nullptr) {
      p.Add(1, "infer", "missing (kind: infer needs an infer section with models)");
      return p.ToStatus();
    }
    const Section infer =
        r.Open(infer_field->value, "infer", LineOf(infer_field->key, 1), kInferKeys);
    if (infer.malformed) return p.ToStatus();

    if (!infer.Has("key")) {
      if (spec.input != InputKind::kImages) {
        p.Add(infer.line, "infer.key", "missing (expected the column that identifies a row)");
      }
    } else {
      r.String(infer, "key", &spec.key);
    }
    NameList(r, infer, "header", &spec.header, true);
    if (spec.input == InputKind::kCsv || spec.input == InputKind::kTsv) {
      if (!spec.input_has_header && spec.header.empty() && !infer.Has("header")) {
        p.Add(infer.line, "infer.header",
              "missing (the input has no header line: set input.skip_header: true if it has "
              "one, or list the column names here)");
      }
    }

    if (spec.input != InputKind::kImages) {
      const Field* tensors = infer.Find("tensors");
      if (tensors == nullptr || !tensors->value.IsSequence() || tensors->value.size() == 0) {
        p.Expected(r.LineOfKey(infer, "tensors"), "infer.tensors",
                   "a non-empty list of {name, type, columns}: the root model's inputs",
                   tensors != nullptr ? Describe(tensors->value) : "nothing");
      } else {
        for (size_t i = 0; i < tensors->value.size(); ++i) {
          const YAML::Node item = tensors->value[i];
          const std::string key = "infer.tensors[" + std::to_string(i) + "]";
          const Section t = r.Open(item, key, LineOf(item, infer.line), kTensorKeys);
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
            NameList(r, t, "columns", &ts.columns, true);
          }
          spec.tensors.push_back(std::move(ts));
        }
      }
    } else if (infer.Has("tensors")) {
      p.Add(r.LineOfKey(infer, "tensors"), "infer.tensors",
            "not used with input.format: images (see infer.image)");
    }

    const Section image = r.Sub(infer, "image", kImageKeys);
    r.Int(image, "width", 1, &spec.image.width);
    r.Int(image, "height", 1, &spec.image.height);
    ReadFloat3(r, image, "mean", &spec.image.mean);
    ReadFloat3(r, image, "std", &spec.image.std);

    const Field* models = infer.Find("models");
    if (models == nullptr || !models->value.IsSequence() || models->value.size() == 0) {
      p.Expected(r.LineOfKey(infer, "models"), "infer.models",
                 "a non-empty list of models ({name, path, ...})",
                 models != nullptr ? Describe(models->value) : "nothing");
    } else {
      const size_t before = p.size();
      for (size_t i = 0; i < models->value.size(); ++i) {
        ReadModel(r, models->value[i], i, base, spec);
      }
      if (p.size() == before) CheckGraph(p, spec);
    }

    const Section pipe = r.Sub(infer, "pipeline", kPipelineKeys);
    std::string mode = "pipelined";
    if (r.String(pipe, "mode", &mode)) {
      if (mode == "pipelined" || mode == "sequential") {
        spec.pipeline.pipelined = mode == "pipelined";
      } else {
        r.Wrong(pipe, "mode", "one of pipelined, sequential");
      }
    }
    r.Int(pipe, "readers", 1, &spec.pipeline.readers);
    r.Int(pipe, "preprocessors", 1, &spec.pipeline.preprocessors);
    r.Int(pipe, "writers", 1, &spec.pipeline.writers);
    r.Bool(pipe, "autoscale", &spec.pipeline.autoscale);
    r.Int(pipe, "autoscale_period_ms", 100, &spec.pipeline.autoscale_period_ms);
    r.Int(pipe, "max_readers", 0, &spec.pipeline.max_readers);
    r.Int(pipe, "max_preprocessors", 0, &spec.pipeline.max_preprocessors);
    r.Int(pipe, "max_predictors", 0, &spec.pipeline.max_predictors);
    r.Int(pipe, "max_writers", 0, &spec.pipeline.max_writers);
    r.Int(pipe, "queue_batches", 1, &spec.pipeline.queue_batches);
    r.Int(pipe, "max_batch_wait_ms", 0, &spec.pipeline.max_batch_wait_ms);

    r.Int(infer, "intra_op_threads", 1, &spec.intra_op_threads);
    if (r.String(infer, "device", &spec.device) && spec.device != "cpu" &&
        !spec.device.starts_with("cuda")) {
      r.Wrong(infer, "device", "cpu or cuda[:N]");
    }
    r.Number(infer, "max_error_rate", 0.0, 1.0, &spec.max_error_rate);
    r.Int(infer, "predict_timeout_ms", 1, &spec.predict_timeout_ms);
    r.Int(infer, "memory_limit_mb", 0, &spec.memory_limit_mb);
    std::string non_finite = "null";
    if (r.String(infer, "non_finite", &non_finite)) {
      if (non_finite == "null") {
        spec.non_finite = NonFinite::kNull;
      } else if (non_finite == "string") {
        spec.non_finite = NonFinite::kString;
      } else if (non_finite == "error") {
        spec.non_finite = NonFinite::kError;
      } else {
        r.Wrong(infer, "non_finite", "one of null, string, error");
      }
    }
  } catch (const YAML::Exception& e) {
    return Status::Internal(spec_path + ": unexpected YAML error: " + e.what());
  }
  if (!p.empty()) return p.ToStatus();
  return spec;
}

Result<InferSpec> LoadInferSpec(const std::string& spec_path) {
  Result<std::string> text = ReadFile(spec_path);
  if (!text.ok()) return text.status();
  return ParseInferSpec(*text, spec_path);
}

}  // namespace baton::infer
