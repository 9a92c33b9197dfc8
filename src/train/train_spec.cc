#include "train/train_spec.h"

#include <algorithm>
#include <filesystem>
#include <string_view>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "spec/schema_reader.h"
#include "spec/spec_problems.h"

namespace baton::train {
namespace {

namespace fs = std::filesystem;

using schema::Field;
using schema::LineOf;
using schema::Quote;
using schema::Reader;
using schema::Section;

constexpr std::string_view kTrainKeys[] = {"model",
                                           "loss_method",
                                           "save",
                                           "key",
                                           "header",
                                           "tensors",
                                           "global_batch",
                                           "optimizer",
                                           "schedule",
                                           "clip_grad_norm",
                                           "intra_op_threads",
                                           "allreduce",
                                           "sharding",
                                           "max_error_rate",
                                           "checkpoint",
                                           "eval",
                                           "straggler",
                                           "seed"};
constexpr std::string_view kOptimizerKeys[] = {"kind",  "lr",  "momentum",    "beta1",
                                               "beta2", "eps", "weight_decay"};
constexpr std::string_view kScheduleKeys[] = {"warmup_steps", "decay", "decay_steps", "min_lr"};
constexpr std::string_view kCheckpointKeys[] = {"every_steps", "dir"};
constexpr std::string_view kEvalKeys[] = {"path", "every_steps", "score_method", "label"};

const schema::SectionKeys kTrainSchema[] = {
    {"train", kTrainKeys},
    {"train.optimizer", kOptimizerKeys},
    {"train.schedule", kScheduleKeys},
    {"train.checkpoint", kCheckpointKeys},
    {"train.eval", kEvalKeys},
    {"train.straggler", StragglerKeys()},
};

void ReadOptimizer(Reader& r, const Section& train, OptimizerSpec* o) {
  const Section s = r.Sub(train, "optimizer", kOptimizerKeys);
  std::string kind = "adam";
  if (r.String(s, "kind", &kind)) {
    if (kind == "sgd") {
      o->kind = OptimizerKind::kSgd;
    } else if (kind == "adam") {
      o->kind = OptimizerKind::kAdam;
    } else if (kind == "adamw") {
      o->kind = OptimizerKind::kAdamW;
    } else {
      r.Wrong(s, "kind", "one of sgd, adam, adamw");
    }
  }
  constexpr double kHuge = 1e30;
  r.Number(s, "lr", 0.0, kHuge, &o->lr);
  r.Number(s, "momentum", 0.0, 1.0, &o->momentum);
  r.Number(s, "beta1", 0.0, 1.0, &o->beta1);
  r.Number(s, "beta2", 0.0, 1.0, &o->beta2);
  r.Number(s, "eps", 0.0, kHuge, &o->eps);
  r.Number(s, "weight_decay", 0.0, kHuge, &o->weight_decay);
  if (o->kind == OptimizerKind::kSgd && (s.Has("beta1") || s.Has("beta2") || s.Has("eps"))) {
    r.problems().Add(s.line, "train.optimizer", "beta1, beta2 and eps are for adam and adamw");
  }
  if (o->kind != OptimizerKind::kSgd && s.Has("momentum")) {
    r.problems().Add(r.LineOfKey(s, "momentum"), "train.optimizer.momentum",
                     "only with kind: sgd (adam's is beta1)");
  }
}

void ReadSchedule(Reader& r, const Section& train, ScheduleSpec* sch, double lr) {
  const Section s = r.Sub(train, "schedule", kScheduleKeys);
  r.Int(s, "warmup_steps", 0, &sch->warmup_steps);
  std::string decay = "constant";
  if (r.String(s, "decay", &decay)) {
    if (decay == "constant") {
      sch->decay = LrDecay::kConstant;
    } else if (decay == "linear") {
      sch->decay = LrDecay::kLinear;
    } else if (decay == "cosine") {
      sch->decay = LrDecay::kCosine;
    } else {
      r.Wrong(s, "decay", "one of constant, linear, cosine");
    }
  }
  r.Int(s, "decay_steps", 1, &sch->decay_steps);
  r.Number(s, "min_lr", 0.0, lr, &sch->min_lr);
  if (sch->decay != LrDecay::kConstant && !s.Has("decay_steps")) {
    r.problems().Add(r.LineOfKey(s, "decay"), "train.schedule.decay_steps",
                     "missing (linear and cosine decay need the steps they take)");
  }
}

void ReadEval(Reader& r, const Section& train, const fs::path& base, TrainSpec* spec) {
  if (!train.Has("eval")) return;
  const Section s = r.Sub(train, "eval", kEvalKeys);
  EvalSpec& e = spec->eval;
  if (!s.Has("path")) {
    r.problems().Add(s.line, "train.eval.path", "missing (expected the held-out file)");
  } else if (r.String(s, "path", &e.path)) {
    e.path = schema::ResolvePath(base, e.path);
  }
  r.Int(s, "every_steps", 1, &e.every_steps, int64_t{1} << 30);
  r.String(s, "score_method", &e.score_method);
  r.String(s, "label", &e.label);
  const bool scores = s.Has("score_method"), label = s.Has("label");
  if (scores != label) {
    r.problems().Add(s.line, scores ? "train.eval.label" : "train.eval.score_method",
                     "score_method and label go together (the AUC needs both)");
  } else if (label && std::none_of(spec->tensors.begin(), spec->tensors.end(),
                                   [&](const infer::TensorSpec& t) { return t.name == e.label; })) {
    r.Wrong(s, "label", "the name of one of train.tensors");
  }
}

}  // namespace

Result<TrainSpec> ParseTrainSpec(const std::string& yaml_text, const std::string& spec_path) {
  BATON_ASSIGN_OR_RETURN(schema::Document doc, schema::ParseDocument(yaml_text, spec_path));
  const YAML::Node& root = doc.root;
  TrainSpec spec;
  spec.spec_path = doc.path;
  const fs::path& base = doc.base_dir;
  SpecProblems p(spec_path);
  Reader r(&p, kTrainSchema);
  try {
    if (!root.IsMap()) return Status::InvalidArgument(spec_path + ":1: expected a mapping");
    const Section top = r.Borrow(root, "", 1);
    ReadRecordFormat(r, r.BorrowSub(top, "input"), "train", /*allow_images=*/false, &spec);
    const Section output = r.BorrowSub(top, "output");
    if (const Field* dir = output.Find("dir"); dir != nullptr && dir->value.IsScalar()) {
      spec.errors_dir = schema::ResolvePath(base, dir->value.Scalar()) + "/_errors";
    }
    const Field* train_field = top.Find("train");
    if (train_field == nullptr) {
      p.Add(1, "train", "missing (kind: train needs a train section with the model)");
      return p.ToStatus();
    }
    const Section train =
        r.Open(train_field->value, "train", LineOf(train_field->key, 1), kTrainKeys);
    if (train.malformed) return p.ToStatus();
    ReadRecordColumns(r, train, &spec);

    if (!train.Has("model")) {
      p.Add(train.line, "train.model", "missing (expected the TorchScript file to train)");
    } else if (r.String(train, "model", &spec.model_path)) {
      spec.model_path = schema::ResolvePath(base, spec.model_path);
    }
    if (!train.Has("save")) {
      p.Add(train.line, "train.save", "missing (expected where the trained model is written)");
    } else if (r.String(train, "save", &spec.save_path)) {
      spec.save_path = schema::ResolvePath(base, spec.save_path);
    }
    if (r.String(train, "loss_method", &spec.loss_method) && spec.loss_method.empty()) {
      r.Wrong(train, "loss_method", "the name of a method of the model");
    }
    r.Int(train, "global_batch", 1, &spec.global_batch, int64_t{1} << 24);
    ReadOptimizer(r, train, &spec.optimizer);
    ReadSchedule(r, train, &spec.schedule, spec.optimizer.lr);
    r.Number(train, "clip_grad_norm", 0.0, 1e30, &spec.clip_grad_norm);
    r.Int(train, "intra_op_threads", 1, &spec.intra_op_threads, 1024);
    r.Number(train, "max_error_rate", 0.0, 1.0, &spec.max_error_rate);
    r.Uint64(train, "seed", &spec.seed);
    if (std::string mode = "auto"; r.String(train, "allreduce", &mode)) {
      if (mode == "auto") {
        spec.allreduce = AllReduceMode::kAuto;
      } else if (mode == "flat") {
        spec.allreduce = AllReduceMode::kFlat;
      } else if (mode == "hierarchical") {
        spec.allreduce = AllReduceMode::kHierarchical;
      } else {
        r.Wrong(train, "allreduce", "one of auto, flat, hierarchical");
      }
    }
    if (std::string name = "NNN"; r.String(train, "sharding", &name)) {
      constexpr std::string_view kWhole =
          "one of NNN, NNG, NGG, NIG, NII (or ddp, zero1, zero2): a strategy that keeps the "
          "parameters whole (a TorchScript model cannot gather them layer by layer)";
      Result<paro::Strategy> strategy = paro::ParseStrategy(name);
      if (!strategy.ok() || strategy->p != paro::Granularity::kNone) {
        r.Wrong(train, "sharding", kWhole);
      } else {
        spec.sharding = *strategy;
      }
    }
    const Section checkpoint = r.Sub(train, "checkpoint", kCheckpointKeys);
    r.Int(checkpoint, "every_steps", 1, &spec.checkpoint_every_steps, int64_t{1} << 30);
    if (checkpoint.Has("dir") && r.String(checkpoint, "dir", &spec.checkpoint_dir)) {
      spec.checkpoint_dir = schema::ResolvePath(base, spec.checkpoint_dir);
    }
    ReadEval(r, train, base, &spec);
    ReadStragglerSpec(r, train, spec.global_batch, &spec.straggler);
  } catch (const YAML::Exception& e) {
    return Status::Internal(spec_path + ": unexpected YAML error: " + e.what());
  }
  if (!p.empty()) return p.ToStatus();
  return spec;
}

Result<TrainSpec> LoadTrainSpec(const std::string& spec_path) {
  Result<std::string> text = ReadFile(spec_path);
  if (!text.ok()) return text.status();
  return ParseTrainSpec(*text, spec_path);
}

}  // namespace baton::train
