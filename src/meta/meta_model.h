// The meta-learned recommendation model, behind an interface free of torch headers (the
// TorchScript implementation, torch_meta_model.cc, is the only meta translation unit with torch).
//
// The model is DLRM-style: dense features through a bottom MLP, one embedding row per sparse id,
// their pairwise interactions and a top MLP to a click logit. Its dense parameters θ_d live in one
// flat buffer, replicated on every rank; its embedding rows live in the row-sharded table
// (sharded_embedding.h) and reach the model as the rows one meta-step fetched. MAML's inner loop
// runs here, per task, on task-private copies of both (papers/gmeta.md §3–4): nothing the inner
// loop does is written back; only the meta-gradient leaves.
//
// The TorchScript file (exported by examples/meta-ctr/export_model.py) provides, functionally in
// its parameters so that the inner loop can run on adapted copies:
//   shape() -> [num_dense, num_sparse, embedding_dim]
//   initial_params() -> List[Tensor]                       θ_d, in a fixed order
//   loss(params, emb [B, F, D], dense [B, num_dense], labels [B]) -> mean log-loss
//   logits(params, emb, dense) -> [B]
// and, optionally, the same for T tasks at once (every parameter with a leading task dimension,
// rows padded to a common count N, `mask` [T, N] marking the real ones), which MetaGradient and
// PlainGradient then use for a whole meta-batch in one pass:
//   batched_loss(params, emb [T, N, F, D], dense [T, N, num_dense], labels [T, N], mask) -> [T]
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "comm/types.h"
#include "common/status.h"
#include "meta/io/episode.h"

namespace baton::meta {

// Which parameters MAML's inner loop adapts (papers/gmeta.md §3 leaves it open).
enum class InnerParams { kDense, kEmbedding, kAll };
Result<InnerParams> ParseInnerParams(std::string_view name);  // dense, embedding, all

struct MamlSpec {
  int inner_steps = 1;        // k SGD steps on the support set; default 1
  double inner_lr = 0.1;      // α; default 0.1
  bool second_order = false;  // differentiate through the inner loop (full MAML); default FOMAML
  InnerParams adapt = InnerParams::kAll;  // default all
  // Run a meta-batch's tasks in one pass when the model has batched methods (default); false:
  // one pass per task (the same arithmetic up to the order of sums; slower).
  bool batched = true;
};

// One task as the model sees it: its episode and, for each of its rows' sparse ids
// (rows() × num_sparse, row-major), the position of that id's row among the fetched rows.
struct TaskRows {
  const Episode* episode = nullptr;
  std::vector<int32_t> row_of;
};

class MetaModel {
 public:
  virtual ~MetaModel() = default;

  virtual comm::DataType dtype() const = 0;  // kFloat32 or kFloat64
  virtual int num_dense() const = 0;
  virtual int num_sparse() const = 0;
  virtual int embedding_dim() const = 0;
  // θ_d: elements of the flat dense buffer, and the buffer (the outer optimizer updates it).
  virtual size_t size() const = 0;
  virtual void* params() = 0;

  // The meta-gradient of `tasks` (adapt on each support set from θ, take the query loss at the
  // adapted parameters), SUMMED over the tasks: `dense_grad` (size()) and `row_grads`
  // (num_rows × embedding_dim, for `rows`) are overwritten. Returns the sum of the tasks' mean
  // query losses.
  virtual Result<double> MetaGradient(const std::vector<TaskRows>& tasks, const void* rows,
                                      size_t num_rows, const MamlSpec& spec, void* dense_grad,
                                      void* row_grads) = 0;
  // The plain (non-meta) model's gradient: each task's mean loss over all its rows, support and
  // query, at θ, summed over the tasks. Same buffers and return as MetaGradient.
  virtual Result<double> PlainGradient(const std::vector<TaskRows>& tasks, const void* rows,
                                       size_t num_rows, void* dense_grad, void* row_grads) = 0;
  // Few-shot prediction: adapt on the task's support rows (spec.inner_steps SGD steps, none for
  // 0), then the click probability of each query row.
  virtual Result<std::vector<double>> AdaptAndScore(const TaskRows& task, const void* rows,
                                                    size_t num_rows, const MamlSpec& spec) = 0;
  // Writes the model with θ_d as its initial_params() to `path` (temporary file, rename): the
  // meta-learned initialisation, loadable by LoadMetaModel.
  virtual Status Save(const std::string& path) = 0;
};

// Loads the TorchScript file; InvalidArgument naming what is missing or wrong (a method, the
// shape, mixed or non-float parameter types), NotFound when the file does not exist.
Result<std::unique_ptr<MetaModel>> LoadMetaModel(const std::string& path);

// Sizes torch's intra-op pool, once per process, before loading.
void ConfigureMetaTorch(int intra_op_threads);

}  // namespace baton::meta
