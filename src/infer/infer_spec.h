// The `infer:` section of a job spec (`kind: infer`): how rows or images become tensors, which
// TorchScript models run on them (a chain or tree of models), and how the worker's pipeline is
// sized. docs/infer.md documents every key for users; defaults are stated next to each field.
//
// The control plane treats this section as opaque: it is parsed here, in the data plane, by the
// infer worker and by its `--check` preflight, which `baton run` and `baton validate` call before
// anything starts. Only the shape of the YAML is checked here; checks that need the input files or
// the models (columns exist, a model accepts the schema) live in preflight.h.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "infer/record_schema.h"

namespace baton::infer {

enum class OutputFormat { kCsv, kJsonl };  // chosen by output.suffix: .csv or .jsonl (default)
// How NaN and infinite float outputs are written (infer.non_finite). JSON has no literal for
// them, and `nan`/`inf` in a JSONL row make the whole line unreadable.
enum class NonFinite {
  kNull,    // JSON null; an empty CSV field (default)
  kString,  // the strings "NaN", "Infinity", "-Infinity" (CSV: those words)
  kError,   // the record goes to the errors file (stage output:<model>), no output row
};

// Image preprocessing: decode (JPEG/PNG/... whatever OpenCV reads), convert to RGB, resize
// (bilinear) to width x height, scale to [0,1], subtract mean and divide by std per channel, CHW.
struct ImageSpec {
  int32_t width = 224;
  int32_t height = 224;
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // ImageNet's, the torchvision default
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

// What a model hands to the models that run `after` it.
enum class EmitKind {
  kOutputs,  // one item per input item: the parent's first output row is the child's input
  kCrops,    // 0..K items per input item: the parent returns (boxes [N,K,4] as normalized
             // x0,y0,x1,y1, scores [N,K]); every box scoring >= score_threshold is cropped out of
             // the decoded image and resized to crop_width x crop_height (images only)
};

struct ModelSpec {
  std::string name;  // [A-Za-z0-9_-]+, unique; names the model in output rows
  std::string path;  // TorchScript file, absolute after parsing
  // The model whose outputs feed this one; empty for the root (exactly one root).
  std::string after;
  EmitKind emit = EmitKind::kOutputs;  // how `after` feeds this model (ignored for the root)
  float score_threshold = 0.5f;        // emit: crops
  int32_t crop_width = 64, crop_height = 64;
  // Items per forward call. Bigger batches use the cores better up to a point and cost memory
  // and latency. Default 64.
  int32_t batch_size = 64;
  // Predictor threads for this model at start, each with its own copy of the model (intra-node
  // scaling). Autoscaling may add more, up to pipeline.max_predictors. Default 1.
  int32_t predictors = 1;
  // Names of the model's outputs (a tensor or a tuple of tensors), for JSONL output. Default
  // out0, out1, ...
  std::vector<std::string> outputs;
  // Whether this model's outputs go to the output files. Default: true for models nothing runs
  // after, false otherwise.
  bool write = true;
  bool write_set = false;
  int line = 0;
};

struct PipelineSpec {
  // Pipelined: read, preprocess, predict and write run concurrently on their own threads, joined
  // by bounded queues. Sequential: one thread does read → preprocess → predict → write for one
  // batch at a time (the baseline the paper compares against). Default pipelined.
  bool pipelined = true;
  int32_t readers = 1;        // shards read at once; default 1
  int32_t preprocessors = 1;  // parse/decode threads at start; default 1
  int32_t writers = 1;        // output formatting threads at start; default 1
  // Adapt stage threads at run time (more readers/preprocessors when the predictors starve, more
  // predictors when their queue is full and cores are idle, more writers when the write queue
  // fills). Default true.
  bool autoscale = true;
  int64_t autoscale_period_ms = 1000;  // decision period; default 1 s
  // Caps for autoscaling; 0 means the number of online cores. Defaults 0.
  int32_t max_readers = 0, max_preprocessors = 0, max_predictors = 0, max_writers = 0;
  int32_t queue_batches = 4;  // capacity of each queue, in batches; default 4
  // A downstream model with fewer than batch_size items waits this long for more. Default 20 ms.
  int64_t max_batch_wait_ms = 20;
};

// The record schema (input format, header, key, tensors: record_schema.h) is the root model's
// input; the key identifies a row in the output.
struct InferSpec : RecordSchema {
  std::string spec_path;  // the job spec file (absolute)
  ImageSpec image;
  std::vector<ModelSpec> models;  // models[0] is the root; every parent precedes its children
  PipelineSpec pipeline;
  // Intra-op threads of the model runtime (one pool shared by the predictors of a worker).
  // Default 1: with several predictors, threads inside one forward call mostly contend.
  int32_t intra_op_threads = 1;
  // "cpu" (default) or "cuda[:N]" (needs a CUDA build of libtorch).
  std::string device = "cpu";
  OutputFormat output = OutputFormat::kJsonl;
  NonFinite non_finite = NonFinite::kNull;  // default null
  std::string output_dir;                   // output.dir (required for kind infer)
  std::string errors_dir;                   // output.dir + "/_errors"
  // A shard whose bad records (parse, decode or predict errors) exceed this fraction is failed
  // (and retried, then dead-lettered) instead of committed. Default 0.01.
  double max_error_rate = 0.01;
  // A forward call running longer than this means the predictor hung: the worker gives its shards
  // back and exits so that its agent restarts it. Default 60 s.
  int64_t predict_timeout_ms = 60000;
  // A worker whose resident memory exceeds this gives its shards back and exits (its agent
  // restarts it): the defence against leaking user code. 0: no limit. Default 0.
  int64_t memory_limit_mb = 0;
};

// Reads the `infer:` section (and input.format, input.skip_header, output.dir/suffix) of the job
// spec at `spec_path`. InvalidArgument lists every problem as "FILE:LINE: key.path: expected ...".
Result<InferSpec> LoadInferSpec(const std::string& spec_path);
Result<InferSpec> ParseInferSpec(const std::string& yaml_text, const std::string& spec_path);

// Index of the model named `name` in spec.models, or -1.
int ModelIndex(const InferSpec& spec, const std::string& name);
// Indices of the models that run after models[parent].
std::vector<int> ChildrenOf(const InferSpec& spec, int parent);

// Exit codes of the infer worker that its agent sees (any non-zero exit is restarted).
inline constexpr int kExitPredictorHung = 75;
inline constexpr int kExitMemoryLimit = 76;

}  // namespace baton::infer
