#include "infer/infer_spec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "common/spec_problems.h"
#include "infer/json_text.h"

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

int LineOf(const YAML::Node& n, int fallback) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : fallback;
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return "\"" + n.Scalar().substr(0, 60) + "\"";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    default:
      return "nothing";
  }
}

using Problems = SpecProblems;

// A mapping checked against its known keys; typed getters report wrong values.
class Map {
 public:
  Map(const YAML::Node& node, std::string path, int line, std::span<const std::string_view> known,
      Problems* p)
      : node_(node), path_(std::move(path)), line_(line), p_(p) {
    if (!node_ || node_.IsNull()) return;
    if (!node_.IsMap()) {
      p_->Expected(line_, path_, "a mapping", Describe(node_));
      ok_ = false;
      return;
    }
    for (const auto& kv : node_) {
      const std::string k = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), k) == known.end()) {
        std::string list;
        for (auto s : known) list += (list.empty() ? "" : ", ") + std::string(s);
        p_->Add(LineOf(kv.first, line_), Key(k), "unknown key (expected one of: " + list + ")");
      }
    }
  }
  bool ok() const { return ok_ && node_ && node_.IsMap(); }
  bool Has(std::string_view k) const {
    return ok() && node_[std::string(k)] && !node_[std::string(k)].IsNull();
  }
  // Undefined (false) when absent.
  YAML::Node Get(std::string_view k) const {
    return Has(k) ? node_[std::string(k)] : YAML::Node(YAML::NodeType::Undefined);
  }
  int LineOfKey(std::string_view k) const {
    if (!ok()) return line_;
    for (const auto& kv : node_) {
      if (kv.first.Scalar() == k) return LineOf(kv.first, line_);
    }
    return line_;
  }
  std::string Key(std::string_view k) const {
    return path_.empty() ? std::string(k) : path_ + "." + std::string(k);
  }
  int line() const { return line_; }

  bool String(std::string_view k, std::string* out, std::string_view expected = "a string") {
    YAML::Node n = Get(k);
    if (!n || n.IsNull()) return false;
    if (!n.IsScalar()) return Wrong(k, expected, n);
    *out = n.Scalar();
    return true;
  }
  template <typename T>
  bool Int(std::string_view k, int64_t lo, T* out) {
    YAML::Node n = Get(k);
    if (!n || n.IsNull()) return false;
    int64_t v = 0;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    std::string rule = lo == 0 ? "a non-negative integer" : "an integer >= " + std::to_string(lo);
    if (lo == 1) rule = "a positive integer";
    if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size() || v < lo) {
      return Wrong(k, rule, n);
    }
    *out = static_cast<T>(v);
    return true;
  }
  bool Float(std::string_view k, double lo, double hi, double* out) {
    YAML::Node n = Get(k);
    if (!n || n.IsNull()) return false;
    double v = 0;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (!n.IsScalar() || ec != std::errc() || end != s.data() + s.size() || !(v >= lo) ||
        !(v <= hi)) {
      return Wrong(k, "a number in [" + Num(lo) + ", " + Num(hi) + "]", n);
    }
    *out = v;
    return true;
  }
  bool Bool(std::string_view k, bool* out) {
    YAML::Node n = Get(k);
    if (!n || n.IsNull()) return false;
    const std::string s = n.IsScalar() ? n.Scalar() : "";
    if (s == "true") {
      *out = true;
    } else if (s == "false") {
      *out = false;
    } else {
      return Wrong(k, "true or false", n);
    }
    return true;
  }
  bool Wrong(std::string_view k, std::string_view expected, const YAML::Node& n) {
    p_->Expected(LineOfKey(k), Key(k), std::string(expected), Describe(n));
    return false;
  }

 private:
  static std::string Num(double v) {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, end);
  }
  YAML::Node node_;
  std::string path_;
  int line_;
  Problems* p_;
  bool ok_ = true;
};

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

bool StringList(const YAML::Node& n, const std::string& key, int line, Problems& p,
                std::vector<std::string>* out, bool expand_ranges) {
  if (!n.IsSequence() || n.size() == 0) {
    p.Expected(line, key, "a non-empty list of strings", Describe(n));
    return false;
  }
  bool ok = true;
  for (size_t i = 0; i < n.size(); ++i) {
    const std::string item_key = key + "[" + std::to_string(i) + "]";
    if (!n[i].IsScalar() || n[i].Scalar().empty()) {
      p.Expected(LineOf(n[i], line), item_key, "a non-empty string", Describe(n[i]));
      ok = false;
      continue;
    }
    if (!expand_ranges) {
      out->push_back(n[i].Scalar());
      continue;
    }
    auto expanded = ExpandColumns(n[i].Scalar());
    if (!expanded) {
      p.Expected(LineOf(n[i], line), item_key,
                 "a column name or a range like d0..d12 (same prefix, ascending)", Describe(n[i]));
      ok = false;
      continue;
    }
    out->insert(out->end(), expanded->begin(), expanded->end());
  }
  return ok;
}

void ReadFloat3(Map& m, std::string_view k, std::array<float, 3>* out, Problems& p) {
  YAML::Node n = m.Get(k);
  if (!n) return;
  if (!n.IsSequence() || n.size() != 3) {
    m.Wrong(k, "a list of 3 numbers (R, G, B)", n);
    return;
  }
  for (size_t i = 0; i < 3; ++i) {
    double v = 0;
    const std::string s = n[i].IsScalar() ? n[i].Scalar() : "";
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || (k == "std" && v <= 0)) {
      m.Wrong(k, k == "std" ? "3 positive numbers" : "3 numbers", n);
      return;
    }
    (*out)[i] = static_cast<float>(v);
  }
}

void ReadModel(const YAML::Node& n, size_t index, const fs::path& base, Problems& p,
               InferSpec& spec) {
  const std::string key = "infer.models[" + std::to_string(index) + "]";
  const int line = LineOf(n, 1);
  if (!n.IsMap()) {
    p.Expected(line, key, "a mapping with name and path", Describe(n));
    return;
  }
  Map m(n, key, line, kModelKeys, &p);
  ModelSpec model;
  model.line = line;
  if (!m.String("name", &model.name) || !IsName(model.name)) {
    if (m.Has("name")) {
      m.Wrong("name", "a model name matching [A-Za-z0-9_-]+", m.Get("name"));
    } else {
      p.Add(line, key + ".name", "missing (expected a model name)");
    }
  }
  if (m.String("path", &model.path)) {
    model.path = (fs::path(model.path).is_absolute() ? fs::path(model.path) : base / model.path)
                     .lexically_normal()
                     .string();
  } else if (!m.Has("path")) {
    p.Add(line, key + ".path", "missing (expected a TorchScript model file)");
  }
  m.String("after", &model.after);
  std::string emit = "outputs";
  if (m.String("emit", &emit)) {
    if (emit == "outputs") {
      model.emit = EmitKind::kOutputs;
    } else if (emit == "crops") {
      model.emit = EmitKind::kCrops;
    } else {
      m.Wrong("emit", "one of outputs, crops", m.Get("emit"));
    }
  }
  double threshold = model.score_threshold;
  if (m.Float("score_threshold", 0.0, 1.0, &threshold)) {
    model.score_threshold = static_cast<float>(threshold);
  }
  m.Int("crop_width", 1, &model.crop_width);
  m.Int("crop_height", 1, &model.crop_height);
  m.Int("batch_size", 1, &model.batch_size);
  m.Int("predictors", 1, &model.predictors);
  if (m.Has("outputs")) {
    StringList(m.Get("outputs"), key + ".outputs", m.LineOfKey("outputs"), p, &model.outputs,
               false);
    // Output names become JSONL field names: two equal ones, or one equal to a field the writer
    // adds, would make a row with a duplicate field whose values readers merge.
    std::set<std::string> seen;
    for (const std::string& o : model.outputs) {
      if (!IsName(o)) {
        p.Add(m.LineOfKey("outputs"), key + ".outputs",
              "\"" + ReadableText(o) + "\" is not a name ([A-Za-z0-9_-]+)");
      } else if (o == "key" || o == "key_base64" || o == "model" || o == "item") {
        p.Add(m.LineOfKey("outputs"), key + ".outputs",
              "\"" + o + "\" is a field every output row has (key, key_base64, model, item)");
      } else if (!seen.insert(o).second) {
        p.Add(m.LineOfKey("outputs"), key + ".outputs", "\"" + o + "\" names two outputs");
      }
    }
  }
  model.write_set = m.Bool("write", &model.write);
  spec.models.push_back(std::move(model));
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
  try {
    if (!root.IsMap()) return Status::InvalidArgument(spec_path + ":1: expected a mapping");
    // The parts of the control-plane sections the worker needs (already validated there).
    const YAML::Node input = root["input"];
    std::string format = input && input["format"] ? input["format"].as<std::string>("") : "";
    const int format_line = input && input["format"] ? LineOf(input["format"], 1) : 1;
    if (format == "csv") {
      spec.input = InputKind::kCsv;
    } else if (format == "tsv") {
      spec.input = InputKind::kTsv;
    } else if (format == "jsonl") {
      spec.input = InputKind::kJsonl;
    } else if (format == "images") {
      spec.input = InputKind::kImages;
    } else {
      p.Expected(format_line, "input.format", "one of csv, tsv, jsonl, images for kind: infer",
                 format.empty() ? "nothing" : "\"" + format + "\"");
    }
    spec.input_has_header =
        input && input["skip_header"] && input["skip_header"].as<std::string>("") == "true";
    const YAML::Node output = root["output"];
    if (!output || !output["dir"] || !output["dir"].IsScalar()) {
      p.Add(output ? LineOf(output, 1) : 1, "output.dir",
            "missing (kind: infer writes one part file per shard there)");
    } else {
      const std::string dir = output["dir"].Scalar();
      spec.output_dir =
          (fs::path(dir).is_absolute() ? fs::path(dir) : base / dir).lexically_normal().string();
      spec.errors_dir = spec.output_dir + "/_errors";
    }
    const std::string suffix =
        output && output["suffix"] ? output["suffix"].as<std::string>("") : ".jsonl";
    if (suffix == ".csv") {
      spec.output = OutputFormat::kCsv;
    } else if (suffix == ".jsonl" || suffix.empty()) {
      spec.output = OutputFormat::kJsonl;
    } else {
      p.Expected(LineOf(output["suffix"], 1), "output.suffix",
                 "\".csv\" or \".jsonl\" for kind: infer (it picks the output format)",
                 "\"" + suffix + "\"");
    }

    const YAML::Node infer_node = root["infer"];
    if (!infer_node) {
      p.Add(1, "infer", "missing (kind: infer needs an infer section with models)");
      return p.ToStatus();
    }
    const int infer_line = LineOf(infer_node, 1);
    Map infer(infer_node, "infer", infer_line, kInferKeys, &p);
    if (!infer.ok()) return p.ToStatus();

    if (!infer.String("key", &spec.key) && spec.input != InputKind::kImages) {
      if (!infer.Has("key")) {
        p.Add(infer_line, "infer.key", "missing (expected the column that identifies a row)");
      }
    }
    if (infer.Has("header")) {
      StringList(infer.Get("header"), "infer.header", infer.LineOfKey("header"), p, &spec.header,
                 true);
    }
    if (spec.input == InputKind::kCsv || spec.input == InputKind::kTsv) {
      if (!spec.input_has_header && spec.header.empty()) {
        p.Add(infer_line, "infer.header",
              "missing (the input has no header line: set input.skip_header: true if it has "
              "one, or list the column names here)");
      }
    }

    if (spec.input != InputKind::kImages) {
      YAML::Node tensors = infer.Get("tensors");
      if (!tensors || !tensors.IsSequence() || tensors.size() == 0) {
        p.Expected(infer.LineOfKey("tensors"), "infer.tensors",
                   "a non-empty list of {name, type, columns}: the root model's inputs",
                   tensors ? Describe(tensors) : "nothing");
      } else {
        for (size_t i = 0; i < tensors.size(); ++i) {
          const std::string key = "infer.tensors[" + std::to_string(i) + "]";
          Map t(tensors[i], key, LineOf(tensors[i], infer_line), kTensorKeys, &p);
          if (!t.ok()) continue;
          TensorSpec ts;
          ts.line = t.line();
          t.String("name", &ts.name);
          if (ts.name.empty()) ts.name = "input" + std::to_string(i);
          std::string type = "float32";
          if (t.String("type", &type)) {
            if (type == "float32" || type == "float") {
              ts.type = TensorType::kFloat32;
            } else if (type == "int64" || type == "long") {
              ts.type = TensorType::kInt64;
            } else {
              t.Wrong("type", "one of float32, int64", t.Get("type"));
            }
          }
          if (!t.Has("columns")) {
            p.Add(ts.line, key + ".columns", "missing (expected a list of column names)");
          } else {
            StringList(t.Get("columns"), key + ".columns", t.LineOfKey("columns"), p, &ts.columns,
                       true);
          }
          spec.tensors.push_back(std::move(ts));
        }
      }
    } else if (infer.Has("tensors")) {
      p.Add(infer.LineOfKey("tensors"), "infer.tensors",
            "not used with input.format: images (see infer.image)");
    }

    Map image(infer.Get("image"), "infer.image", infer.LineOfKey("image"), kImageKeys, &p);
    image.Int("width", 1, &spec.image.width);
    image.Int("height", 1, &spec.image.height);
    if (image.ok()) {
      ReadFloat3(image, "mean", &spec.image.mean, p);
      ReadFloat3(image, "std", &spec.image.std, p);
    }

    YAML::Node models = infer.Get("models");
    if (!models || !models.IsSequence() || models.size() == 0) {
      p.Expected(infer.LineOfKey("models"), "infer.models",
                 "a non-empty list of models ({name, path, ...})",
                 models ? Describe(models) : "nothing");
    } else {
      const size_t before = p.size();
      for (size_t i = 0; i < models.size(); ++i) ReadModel(models[i], i, base, p, spec);
      if (p.size() == before) CheckGraph(p, spec);
    }

    Map pipe(infer.Get("pipeline"), "infer.pipeline", infer.LineOfKey("pipeline"), kPipelineKeys,
             &p);
    std::string mode = "pipelined";
    if (pipe.String("mode", &mode)) {
      if (mode == "pipelined" || mode == "sequential") {
        spec.pipeline.pipelined = mode == "pipelined";
      } else {
        pipe.Wrong("mode", "one of pipelined, sequential", pipe.Get("mode"));
      }
    }
    pipe.Int("readers", 1, &spec.pipeline.readers);
    pipe.Int("preprocessors", 1, &spec.pipeline.preprocessors);
    pipe.Int("writers", 1, &spec.pipeline.writers);
    pipe.Bool("autoscale", &spec.pipeline.autoscale);
    pipe.Int("autoscale_period_ms", 100, &spec.pipeline.autoscale_period_ms);
    pipe.Int("max_readers", 0, &spec.pipeline.max_readers);
    pipe.Int("max_preprocessors", 0, &spec.pipeline.max_preprocessors);
    pipe.Int("max_predictors", 0, &spec.pipeline.max_predictors);
    pipe.Int("max_writers", 0, &spec.pipeline.max_writers);
    pipe.Int("queue_batches", 1, &spec.pipeline.queue_batches);
    pipe.Int("max_batch_wait_ms", 0, &spec.pipeline.max_batch_wait_ms);

    infer.Int("intra_op_threads", 1, &spec.intra_op_threads);
    if (infer.String("device", &spec.device) && spec.device != "cpu" &&
        !spec.device.starts_with("cuda")) {
      infer.Wrong("device", "cpu or cuda[:N]", infer.Get("device"));
    }
    infer.Float("max_error_rate", 0.0, 1.0, &spec.max_error_rate);
    infer.Int("predict_timeout_ms", 1, &spec.predict_timeout_ms);
    infer.Int("memory_limit_mb", 0, &spec.memory_limit_mb);
    std::string non_finite;
    if (infer.String("non_finite", &non_finite)) {
      if (non_finite == "null") {
        spec.non_finite = NonFinite::kNull;
      } else if (non_finite == "string") {
        spec.non_finite = NonFinite::kString;
      } else if (non_finite == "error") {
        spec.non_finite = NonFinite::kError;
      } else {
        infer.Wrong("non_finite", "one of null, string, error", infer.Get("non_finite"));
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
