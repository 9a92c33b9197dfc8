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
    model.path = schema::ResolvePath(base, model.path);
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
    ReadNameList(r, m, "outputs", &model.outputs, false);
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
  BATON_ASSIGN_OR_RETURN(schema::Document doc, schema::ParseDocument(yaml_text, spec_path));
  const YAML::Node& root = doc.root;
  InferSpec spec;
  spec.spec_path = doc.path;
  const fs::path& base = doc.base_dir;
  Problems p(spec_path);
  Reader r(&p, kInferSchema);
  try {
    if (!root.IsMap()) return Status::InvalidArgument(spec_path + ":1: expected a mapping");
    const Section top = r.Borrow(root, "", 1);
    // The parts of the control-plane sections the worker needs (validated by the job spec).
    const Section input = r.BorrowSub(top, "input");
    ReadRecordFormat(r, input, "infer", /*allow_images=*/true, &spec);
    const Section output = r.BorrowSub(top, "output");
    const Field* dir = output.Find("dir");
    if (dir == nullptr || !dir->value.IsScalar()) {
      p.Add(r.LineOfKey(output, "dir"), "output.dir",
            "missing (kind: infer writes one part file per shard there)");
    } else {
      const std::string& d = dir->value.Scalar();
      spec.output_dir = schema::ResolvePath(base, d);
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

    ReadRecordColumns(r, infer, &spec);

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
