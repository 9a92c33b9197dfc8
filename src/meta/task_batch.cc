#include "meta/task_batch.h"

#include <algorithm>
#include <string>

namespace baton::meta {
namespace {

// Fills one padded side: rows [first, first + count) of each task.
struct Side {
  uint32_t first, count;
};

void Fill(const std::vector<TaskRows>& tasks, const std::vector<std::vector<int64_t>>& slot_of,
          const std::vector<Side>& sides, int64_t row_slots, int num_dense, int num_sparse,
          PaddedRows* out) {
  int64_t longest = 0;
  for (const Side& s : sides) longest = std::max<int64_t>(longest, s.count);
  const size_t t_count = tasks.size();
  const size_t width = static_cast<size_t>(longest);
  out->rows = longest;
  out->positions.assign(t_count * width * num_sparse, 0);
  out->dense.assign(t_count * width * num_dense, 0.0f);
  out->labels.assign(t_count * width, 0.0f);
  out->mask.assign(t_count * width, 0.0f);
  for (size_t t = 0; t < t_count; ++t) {
    const Episode& ep = *tasks[t].episode;
    const int64_t base = static_cast<int64_t>(t) * row_slots;
    for (size_t r = 0; r < width; ++r) {
      const size_t out_row = t * width + r;
      int64_t* pos = out->positions.data() + out_row * num_sparse;
      if (r >= sides[t].count) {
        std::fill(pos, pos + num_sparse, base);  // a real slot of the task; masked out
        continue;
      }
      const size_t row = sides[t].first + r;
      for (int f = 0; f < num_sparse; ++f) pos[f] = base + slot_of[t][row * num_sparse + f];
      std::copy_n(ep.dense.data() + row * num_dense, num_dense,
                  out->dense.data() + out_row * num_dense);
      out->labels[out_row] = ep.labels[row];
      out->mask[out_row] = 1.0f;
    }
  }
}

}  // namespace

Status CheckTaskShape(const Episode& ep, int num_dense, int num_sparse) {
  if (static_cast<int>(ep.num_dense) != num_dense ||
      static_cast<int>(ep.num_sparse) != num_sparse) {
    return Status::InvalidArgument("task " + ep.task_id + " has " + std::to_string(ep.num_dense) +
                                   " dense and " + std::to_string(ep.num_sparse) +
                                   " sparse columns; the model takes " + std::to_string(num_dense) +
                                   " and " + std::to_string(num_sparse));
  }
  if (ep.num_support == 0 || ep.num_query == 0) {
    return Status::InvalidArgument("task " + ep.task_id + " needs support and query rows");
  }
  if (ep.dense.size() != ep.rows() * num_dense || ep.sparse.size() != ep.rows() * num_sparse ||
      ep.labels.size() != ep.rows()) {
    return Status::InvalidArgument("task " + ep.task_id + ": its arrays do not hold " +
                                   std::to_string(ep.rows()) + " rows");
  }
  for (int64_t id : ep.sparse) {
    if (id < 0) return Status::InvalidArgument("task " + ep.task_id + ": negative sparse id");
  }
  return Status::Ok();
}

Result<TaskBatch> BuildTaskBatch(const std::vector<TaskRows>& tasks, int num_dense, int num_sparse,
                                 bool with_all_rows) {
  TaskBatch batch;
  batch.tasks = static_cast<int64_t>(tasks.size());
  // Each task's distinct fetched rows, and each of its ids' slot among them.
  std::vector<std::vector<int32_t>> distinct(tasks.size());
  std::vector<std::vector<int64_t>> slot_of(tasks.size());
  for (size_t t = 0; t < tasks.size(); ++t) {
    BATON_RETURN_IF_ERROR(CheckTaskShape(*tasks[t].episode, num_dense, num_sparse));
    std::vector<int32_t>& d = distinct[t];
    d = tasks[t].row_of;
    std::sort(d.begin(), d.end());
    d.erase(std::unique(d.begin(), d.end()), d.end());
    slot_of[t].resize(tasks[t].row_of.size());
    for (size_t k = 0; k < slot_of[t].size(); ++k) {
      slot_of[t][k] = std::lower_bound(d.begin(), d.end(), tasks[t].row_of[k]) - d.begin();
    }
    batch.row_slots = std::max<int64_t>(batch.row_slots, static_cast<int64_t>(d.size()));
  }
  batch.rows.assign(tasks.size() * static_cast<size_t>(batch.row_slots), 0);
  for (size_t t = 0; t < tasks.size(); ++t) {
    std::copy(distinct[t].begin(), distinct[t].end(),
              batch.rows.begin() + static_cast<ptrdiff_t>(t * batch.row_slots));
  }
  std::vector<Side> support, query, all;
  for (const TaskRows& task : tasks) {
    const Episode& ep = *task.episode;
    support.push_back({0, ep.num_support});
    query.push_back({ep.num_support, ep.num_query});
    all.push_back({0, ep.num_support + ep.num_query});
  }
  Fill(tasks, slot_of, support, batch.row_slots, num_dense, num_sparse, &batch.support);
  Fill(tasks, slot_of, query, batch.row_slots, num_dense, num_sparse, &batch.query);
  if (with_all_rows) Fill(tasks, slot_of, all, batch.row_slots, num_dense, num_sparse, &batch.all);
  return batch;
}

}  // namespace baton::meta
