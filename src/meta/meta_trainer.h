// One rank's side of a distributed meta-step (G-Meta, papers/gmeta.md §4), torch-free:
//
//   1. the ids of all local tasks, support and query, deduplicated, fetched once (lookup);
//   2. MAML per task on local copies (the model, meta_model.h): no communication;
//   3. the dense meta-gradient all-reduced (with the task count, so the mean is over the global
//      meta-batch) through `dense_group` (HO-Ring across nodes where that is what it is) and the
//      outer optimizer on θ_d;
//   4. the row gradients back to their owners in one all-to-all(v), sparse optimizer there.
//
// Every rank calls Step the same number of times (a rank with no tasks passes an empty list and
// still takes part in the collectives). The result equals single-process MAML over the union of
// the ranks' tasks, up to the order of floating-point sums.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "comm/collectives.h"
#include "comm/process_group.h"
#include "common/status.h"
#include "meta/embedding_exchange.h"
#include "meta/io/episode.h"
#include "meta/meta_model.h"
#include "meta/sharded_embedding.h"
#include "train/flat_optimizer.h"

namespace baton::meta {

struct MetaStepOptions {
  MamlSpec maml;
  train::OptimizerSpec outer;  // on θ_d (outer learning rate β is outer.lr)
  // Train the plain (non-meta) model instead: the loss over every row of each task at θ.
  bool plain = false;
  // Ablation: look up each occurrence of an id instead of each distinct id once.
  bool deduplicate = true;
  // Ablation: look the rows up this many times per meta-step (a naive implementation looks up
  // again for every inner step and for the query pass: inner_steps + 1). The rows cannot change
  // within a step, so only the cost differs.
  int lookups_per_step = 1;
};

struct MetaStepStats {
  double loss = 0;          // mean over the global meta-batch of the tasks' losses
  int64_t tasks = 0;        // in the global meta-batch
  size_t ids = 0;           // sparse ids in this rank's tasks
  size_t rows_fetched = 0;  // rows this rank looked up (distinct ids unless deduplicate is off)
  double lookup_s = 0, compute_s = 0, dense_sync_s = 0, push_s = 0;
};

// For evaluation: a query row's click probability and its label.
struct ScoredRow {
  double score = 0;
  float label = 0;
};

// How a meta-batch's rows are fetched: one deduplicated lookup unless an ablation says otherwise.
struct FetchOptions {
  bool deduplicate = true;
  int lookups = 1;
};

// Looks up the rows of every sparse id of `tasks` (support and query) through `exchange` (a
// collective) and maps each task's ids to them in `task_rows`. Returns the number of rows fetched.
template <typename T>
Result<size_t> FetchTaskRows(EmbeddingExchange<T>& exchange, const std::vector<Episode>& tasks,
                             const FetchOptions& options, std::vector<TaskRows>* task_rows,
                             std::vector<T>* rows);

template <typename T>
class MetaTrainer {
 public:
  // `dense_group` and `sparse_group` may be null for a single process; otherwise they span the
  // same ranks (they may be the same object). The model's dtype must be T's.
  MetaTrainer(MetaModel* model, comm::Collectives* dense_group, comm::ProcessGroup* sparse_group,
              EmbeddingShard<T>* shard, const MetaStepOptions& options);

  Result<MetaStepStats> Step(const std::vector<Episode>& tasks);
  // Adapts on each task's support set (adapt_steps inner steps; 0: none) from the current
  // initialisation and scores its query rows. A collective (it looks rows up): every rank calls
  // it, with its own tasks.
  Result<std::vector<ScoredRow>> Evaluate(const std::vector<Episode>& tasks, int adapt_steps);

  const ExchangeCounters& exchange_counters() const { return exchange_.counters(); }
  int64_t steps() const { return optimizer_.steps(); }

 private:
  // Looks up the rows of `tasks` and maps every task's ids to them.
  Status Fetch(const std::vector<Episode>& tasks, std::vector<TaskRows>* task_rows,
               std::vector<T>* rows, MetaStepStats* stats);

  MetaModel* model_;
  comm::Collectives* dense_group_;
  EmbeddingShard<T>* shard_;
  MetaStepOptions options_;
  EmbeddingExchange<T> exchange_;
  train::FlatOptimizer<T> optimizer_;
  std::vector<T> dense_grad_;  // size() + 2: the gradient, the task count, the loss sum
};

}  // namespace baton::meta
