#include "meta/meta_spec.h"

#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "spec/schema_reader.h"
#include "spec/spec_problems.h"

namespace baton::meta {
namespace {

using schema::Field;
using schema::LineOf;
using schema::Reader;
using schema::Section;

constexpr std::string_view kMetaKeys[] = {
    "model",       "episodes",   "save",  "tasks_per_step",   "order",
    "inner_steps", "inner_lr",   "adapt", "outer_lr",         "sparse_optimizer",
    "sparse_lr",   "init_scale", "seed",  "intra_op_threads", "checkpoint"};
constexpr std::string_view kCheckpointKeys[] = {"every_steps", "dir"};

const schema::SectionKeys kMetaSchema[] = {
    {"meta", kMetaKeys},
    {"meta.checkpoint", kCheckpointKeys},
};

// A required path key, resolved against the spec's folder.
void ReadPath(Reader& r, const Section& meta, std::string_view key, std::string_view what,
              const std::string& base, std::string* out) {
  if (!meta.Has(key)) {
    r.Missing(meta, key, what);
  } else if (r.String(meta, key, out)) {
    *out = schema::ResolvePath(base, *out);
  }
}

}  // namespace

Result<MetaSpec> ParseMetaSpec(const std::string& yaml_text, const std::string& spec_path) {
  BATON_ASSIGN_OR_RETURN(schema::Document doc, schema::ParseDocument(yaml_text, spec_path));
  const YAML::Node& root = doc.root;
  MetaSpec spec;
  train::TrainSpec& rt = spec.runtime;
  rt.spec_path = doc.path;
  const std::string base = doc.base_dir.string();
  SpecProblems p(spec_path);
  Reader r(&p, kMetaSchema);
  try {
    if (!root.IsMap()) return Status::InvalidArgument(spec_path + ":1: expected a mapping");
    const Section top = r.Borrow(root, "", 1);
    const Section input = r.BorrowSub(top, "input");
    infer::ReadRecordFormat(r, input, "meta", /*allow_images=*/false, &rt);
    if (rt.input != infer::InputKind::kCsv || !rt.input_has_header) {
      p.Add(input.line, "input",
            "expected the index of an episode file (EPISODES.index.csv from baton meta prepare: "
            "format csv, skip_header: true)");
    }
    const Section output = r.BorrowSub(top, "output");
    if (const Field* dir = output.Find("dir"); dir != nullptr && dir->value.IsScalar()) {
      rt.errors_dir = schema::ResolvePath(base, dir->value.Scalar()) + "/_errors";
    }
    const Field* meta_field = top.Find("meta");
    if (meta_field == nullptr) {
      p.Add(1, "meta", "missing (kind: meta needs a meta section with the model and episodes)");
      return p.ToStatus();
    }
    const Section meta = r.Open(meta_field->value, "meta", LineOf(meta_field->key, 1), kMetaKeys);
    if (meta.malformed) return p.ToStatus();
    ReadPath(r, meta, "model", "the TorchScript meta model (examples/meta-ctr/export_model.py)",
             base, &rt.model_path);
    ReadPath(r, meta, "episodes", "the episode file whose index is the input", base,
             &spec.episodes);
    ReadPath(r, meta, "save", "where the meta-learned model is written", base, &rt.save_path);
    rt.global_batch = 16;
    r.Int(meta, "tasks_per_step", 1, &rt.global_batch, int64_t{1} << 20);
    MamlSpec& maml = spec.job.maml;
    if (std::string order = "first"; r.String(meta, "order", &order)) {
      if (order != "first" && order != "second") r.Wrong(meta, "order", "first or second");
      maml.second_order = order == "second";
    }
    r.Int(meta, "inner_steps", 0, &maml.inner_steps, 100);
    r.Number(meta, "inner_lr", 0.0, 1e6, &maml.inner_lr);
    if (std::string adapt = "all"; r.String(meta, "adapt", &adapt)) {
      Result<InnerParams> parsed = ParseInnerParams(adapt);
      if (!parsed.ok())
        r.Wrong(meta, "adapt", "dense, embedding or all");
      else
        maml.adapt = *parsed;
    }
    rt.optimizer.kind = train::OptimizerKind::kAdam;
    rt.optimizer.lr = 0.003;
    r.Number(meta, "outer_lr", 1e-12, 1e6, &rt.optimizer.lr);
    if (std::string name = "adagrad"; r.String(meta, "sparse_optimizer", &name)) {
      Result<SparseOptimizerKind> kind = ParseSparseOptimizer(name);
      if (!kind.ok())
        r.Wrong(meta, "sparse_optimizer", "sgd, adagrad or adam");
      else
        spec.job.sparse.kind = *kind;
    }
    if (spec.job.sparse.kind == SparseOptimizerKind::kAdam) spec.job.sparse.eps = 1e-8;
    r.Number(meta, "sparse_lr", 1e-12, 1e6, &spec.job.sparse.lr);
    r.Number(meta, "init_scale", 0.0, 1e6, &spec.job.init_scale);
    r.Uint64(meta, "seed", &spec.job.seed);
    rt.seed = spec.job.seed;
    r.Int(meta, "intra_op_threads", 1, &rt.intra_op_threads, 1024);
    const Section checkpoint = r.Sub(meta, "checkpoint", kCheckpointKeys);
    r.Int(checkpoint, "every_steps", 1, &rt.checkpoint_every_steps, int64_t{1} << 30);
    if (checkpoint.Has("dir") && r.String(checkpoint, "dir", &rt.checkpoint_dir)) {
      rt.checkpoint_dir = schema::ResolvePath(base, rt.checkpoint_dir);
    }
    // One record per task: the index's episode column.
    rt.key = "episode";
    rt.tensors = {infer::TensorSpec{"episode", infer::TensorType::kInt64, {"episode"}, meta.line}};
    rt.max_error_rate = 0;  // the index is written by prepare: a bad line means a wrong input
  } catch (const YAML::Exception& e) {
    return Status::Internal(spec_path + ": unexpected YAML error: " + e.what());
  }
  if (!p.empty()) return p.ToStatus();
  return spec;
}

Result<MetaSpec> LoadMetaSpec(const std::string& spec_path) {
  Result<std::string> text = ReadFile(spec_path);
  if (!text.ok()) return text.status();
  return ParseMetaSpec(*text, spec_path);
}

}  // namespace baton::meta
