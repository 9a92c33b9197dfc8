// The `train:` section of a job spec (`kind: train`): the TorchScript model to train, how records
// become its inputs (the record schema shared with `kind: infer`, infer/record_schema.h), the
// global batch, the optimizer and its learning-rate schedule, and where the trained model goes.
// docs/train.md documents every key for users; defaults are stated next to each field.
//
// The model contract: the loss method (train.loss_method, default forward) takes the tensors of
// `train.tensors` in order (the label among them, a column like any other) and returns the
// per-sample losses, a [batch] tensor (or a tuple whose first element is that tensor). A model
// whose forward() predicts and whose `loss` method trains is saved runnable by `kind: infer`. The
// gradient of a step is the sum of the per-sample gradients over every rank divided by the samples
// of the step (train.global_batch, fewer only at the end of the data), so ranks may hold unequal
// parts of the batch.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "infer/record_schema.h"
#include "train/paro/strategy.h"
#include "train/straggler/batch_plan.h"
#include "train/straggler/straggler_spec.h"

namespace baton::train {

enum class OptimizerKind { kSgd, kAdam, kAdamW };
enum class LrDecay { kConstant, kLinear, kCosine };

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kAdam;  // default adam
  double lr = 1e-3;                           // peak learning rate; default 0.001
  double momentum = 0.0;                      // sgd only; default 0
  double beta1 = 0.9, beta2 = 0.999;          // adam, adamw; defaults 0.9, 0.999
  double eps = 1e-8;                          // adam, adamw; default 1e-8
  // sgd, adam: L2 penalty added to the gradient; adamw: decoupled decay. Default 0.
  double weight_decay = 0.0;
};

struct ScheduleSpec {
  int64_t warmup_steps = 0;  // lr rises linearly from lr/warmup_steps to lr; default 0
  LrDecay decay = LrDecay::kConstant;
  // Steps over which linear/cosine decay goes from lr to min_lr (counted after warm-up);
  // required with those decays.
  int64_t decay_steps = 0;
  double min_lr = 0.0;
};

// train.eval: a held-out split scored while training (train/evaluator.h).
struct EvalSpec {
  std::string path;  // the held-out file, same format and schema as the input (absolute); "": off
  // Rank 0 evaluates every this many steps, and after the last step; default 500.
  int64_t every_steps = 500;
  // A method returning one score per row (e.g. forward() of a model that predicts): with it the
  // AUC of the scores against `label` is reported too. Its inputs are named among train.tensors.
  std::string score_method;
  std::string label;  // the train.tensors entry holding the binary label; required with scores
};

// train.allreduce: how the gradient all-reduce crosses nodes.
enum class AllReduceMode {
  // HO-Ring (comm/hierarchical_ring.h) when the generation spans 2 or more nodes with the same
  // number (2 or more) of ranks on each and the message is at least 1 MiB; else the flat ring.
  kAuto,
  kFlat,          // the flat ring always
  kHierarchical,  // HO-Ring whenever the topology allows it, whatever the message size
};

struct TrainSpec : infer::RecordSchema {
  std::string spec_path;   // the job spec file (absolute)
  std::string model_path;  // train.model: the TorchScript file to train (absolute)
  std::string save_path;   // train.save: where the trained model goes (absolute); required
  std::string loss_method = "forward";         // train.loss_method: returns the per-sample losses
  int64_t global_batch = kDefaultGlobalBatch;  // samples per step over all ranks; default 256
  OptimizerSpec optimizer;
  ScheduleSpec schedule;
  double clip_grad_norm = 0.0;   // clip the global gradient norm to this; 0 (default): off
  int32_t intra_op_threads = 1;  // torch threads per worker; default 1
  AllReduceMode allreduce = AllReduceMode::kAuto;  // train.allreduce; default auto
  // train.sharding: how gradients and optimizer state are partitioned (PaRO-DP, docs/paro.md);
  // default NNN (plain data parallel: every rank holds everything). NNG = ZeRO-1, NGG = ZeRO-2,
  // NIG and NII; with sharding, train.allreduce picks the path of the world collectives.
  paro::Strategy sharding;
  // A shard whose bad records exceed this fraction fails (retried, then dead-lettered); its good
  // records may already have been trained on. Default 0.01.
  double max_error_rate = 0.01;
  // train.checkpoint: a flash checkpoint (memory, then disk in the background) every this many
  // steps; default 50. A failure costs at most this many steps (train/checkpointer.h).
  int64_t checkpoint_every_steps = 50;
  // train.checkpoint.dir: where snapshots are persisted; every node must see the same directory
  // (as for output.dir). Default (empty here): <master.state_dir>/checkpoints.
  std::string checkpoint_dir;
  EvalSpec eval;
  // train.straggler: AntDT's policies on the master, injected stragglers (straggler_spec.h).
  StragglerSpec straggler;
  std::string errors_dir;  // output.dir + "/_errors" when the job has an output dir, else ""
  uint64_t seed = 1;       // torch's seed (dropout and the like); default 1
};

// Reads the `train:` section (and input.format, input.skip_header, output.dir) of the job spec
// at `spec_path`. InvalidArgument lists every problem as "FILE:LINE: key.path: expected ...".
Result<TrainSpec> LoadTrainSpec(const std::string& spec_path);
Result<TrainSpec> ParseTrainSpec(const std::string& yaml_text, const std::string& spec_path);

// Exit code of the train worker for a bad spec or model (the agent does not restart it).
inline constexpr int kExitBadJob = 2;

}  // namespace baton::train
