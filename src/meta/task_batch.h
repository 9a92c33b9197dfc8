// A meta-batch of tasks laid out for one batched pass of the model (meta_model.h): every task's
// support rows padded to the longest support set, likewise the query rows (and, for the plain
// model, all rows), with a mask marking the real rows. Each task gets its own slots of the
// fetched rows it uses, so the inner loop can adapt them per task: task t's distinct rows sit at
// t·row_slots + k, and each row's sparse ids point there. Torch-free: plain arrays the torch side
// wraps without copying.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "meta/meta_model.h"

namespace baton::meta {

struct PaddedRows {
  int64_t rows = 0;                // per task: the longest task's count
  std::vector<int64_t> positions;  // tasks × rows × num_sparse: slots (padding: the task's first)
  std::vector<float> dense;        // tasks × rows × num_dense (padding: 0)
  std::vector<float> labels;       // tasks × rows (padding: 0)
  std::vector<float> mask;         // tasks × rows: 1 for a real row, 0 for padding
};

struct TaskBatch {
  int64_t tasks = 0;
  int64_t row_slots = 0;      // per task: the largest number of distinct rows a task uses
  std::vector<int64_t> rows;  // tasks × row_slots: positions among the fetched rows (padding: 0)
  PaddedRows support, query;
  PaddedRows all;  // support then query rows of each task (only when asked for)
};

// InvalidArgument when a task's shape is not the model's, or it lacks support or query rows.
Result<TaskBatch> BuildTaskBatch(const std::vector<TaskRows>& tasks, int num_dense, int num_sparse,
                                 bool with_all_rows);

// Checks one task against the model's shape (the same messages for the batched and per-task
// paths).
Status CheckTaskShape(const Episode& episode, int num_dense, int num_sparse);

}  // namespace baton::meta
