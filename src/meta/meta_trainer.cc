#include "meta/meta_trainer.h"

#include "meta/task_batch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

namespace baton::meta {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

template <typename T>
constexpr comm::DataType kType = sizeof(T) == 8 ? comm::DataType::kFloat64
                                                : comm::DataType::kFloat32;

}  // namespace

template <typename T>
MetaTrainer<T>::MetaTrainer(MetaModel* model, comm::Collectives* dense_group,
                            comm::ProcessGroup* sparse_group, EmbeddingShard<T>* shard,
                            const MetaStepOptions& options)
    : model_(model),
      dense_group_(dense_group),
      shard_(shard),
      options_(options),
      exchange_(sparse_group, shard),
      optimizer_(options.outer, model->size()),
      dense_grad_(model->size() + 2) {}

template <typename T>
Result<size_t> FetchTaskRows(EmbeddingExchange<T>& exchange, const std::vector<Episode>& tasks,
                             const FetchOptions& options, std::vector<TaskRows>* task_rows,
                             std::vector<T>* rows) {
  std::vector<int64_t> ids;
  for (const Episode& ep : tasks) ids.insert(ids.end(), ep.sparse.begin(), ep.sparse.end());
  std::vector<int32_t> position;
  std::vector<int64_t> lookup;
  if (options.deduplicate) {
    UniqueIds unique = Deduplicate(ids.data(), ids.size());
    lookup = std::move(unique.ids);
    position = std::move(unique.inverse);
  } else {
    lookup = ids;
    position.resize(ids.size());
    std::iota(position.begin(), position.end(), 0);
  }
  for (int k = 0; k < std::max(1, options.lookups); ++k) {
    BATON_RETURN_IF_ERROR(exchange.Lookup(lookup, rows));
  }
  task_rows->clear();
  size_t next = 0;
  for (const Episode& ep : tasks) {
    TaskRows t;
    t.episode = &ep;
    t.row_of.assign(position.begin() + static_cast<ptrdiff_t>(next),
                    position.begin() + static_cast<ptrdiff_t>(next + ep.sparse.size()));
    next += ep.sparse.size();
    task_rows->push_back(std::move(t));
  }
  return lookup.size();
}

template <typename T>
Status MetaTrainer<T>::Fetch(const std::vector<Episode>& tasks, std::vector<TaskRows>* task_rows,
                             std::vector<T>* rows, MetaStepStats* stats) {
  const auto start = std::chrono::steady_clock::now();
  stats->ids = 0;
  for (const Episode& ep : tasks) {
    BATON_RETURN_IF_ERROR(CheckTaskShape(ep, model_->num_dense(), model_->num_sparse()));
    stats->ids += ep.sparse.size();
  }
  BATON_ASSIGN_OR_RETURN(
      stats->rows_fetched,
      FetchTaskRows(exchange_, tasks, {options_.deduplicate, options_.lookups_per_step}, task_rows,
                    rows));
  stats->lookup_s = SecondsSince(start);
  return Status::Ok();
}

template <typename T>
Result<MetaStepStats> MetaTrainer<T>::Step(const std::vector<Episode>& tasks) {
  MetaStepStats stats;
  std::vector<TaskRows> task_rows;
  std::vector<T> rows;
  BATON_RETURN_IF_ERROR(Fetch(tasks, &task_rows, &rows, &stats));
  const size_t num_rows = rows.size() / static_cast<size_t>(shard_->dim());

  auto start = std::chrono::steady_clock::now();
  std::vector<T> row_grads(rows.size());
  const size_t n = model_->size();
  Result<double> loss = options_.plain
                            ? model_->PlainGradient(task_rows, rows.data(), num_rows,
                                                    dense_grad_.data(), row_grads.data())
                            : model_->MetaGradient(task_rows, rows.data(), num_rows, options_.maml,
                                                   dense_grad_.data(), row_grads.data());
  BATON_RETURN_IF_ERROR(loss.status());
  dense_grad_[n] = static_cast<T>(tasks.size());
  dense_grad_[n + 1] = static_cast<T>(*loss);
  stats.compute_s = SecondsSince(start);

  start = std::chrono::steady_clock::now();
  if (dense_group_ != nullptr && dense_group_->size() > 1) {
    BATON_RETURN_IF_ERROR(dense_group_->AllReduce(dense_grad_.data(), dense_grad_.size(), kType<T>,
                                                  comm::ReduceOp::kSum));
  }
  stats.tasks = static_cast<int64_t>(dense_grad_[n] + T{0.5});
  if (stats.tasks == 0) return stats;  // nothing anywhere: no update, and no push either side
  const double scale = 1.0 / static_cast<double>(stats.tasks);
  stats.loss = static_cast<double>(dense_grad_[n + 1]) * scale;
  for (size_t k = 0; k < n; ++k) dense_grad_[k] = static_cast<T>(dense_grad_[k] * scale);
  optimizer_.Update(static_cast<T*>(model_->params()), dense_grad_.data(), 0, n, options_.outer.lr);
  optimizer_.EndStep();
  stats.dense_sync_s = SecondsSince(start);

  start = std::chrono::steady_clock::now();
  BATON_RETURN_IF_ERROR(exchange_.Push(row_grads.data(), scale));
  stats.push_s = SecondsSince(start);
  return stats;
}

template <typename T>
Result<std::vector<ScoredRow>> MetaTrainer<T>::Evaluate(const std::vector<Episode>& tasks,
                                                        int adapt_steps) {
  MetaStepStats stats;
  std::vector<TaskRows> task_rows;
  std::vector<T> rows;
  BATON_RETURN_IF_ERROR(Fetch(tasks, &task_rows, &rows, &stats));
  const size_t num_rows = rows.size() / static_cast<size_t>(shard_->dim());
  MamlSpec spec = options_.maml;
  spec.inner_steps = adapt_steps;
  std::vector<ScoredRow> scored;
  for (const TaskRows& t : task_rows) {
    BATON_ASSIGN_OR_RETURN(std::vector<double> p,
                           model_->AdaptAndScore(t, rows.data(), num_rows, spec));
    for (size_t q = 0; q < p.size(); ++q) {
      if (!std::isfinite(p[q])) {
        return Status::InvalidArgument("task " + t.episode->task_id +
                                       ": the model scored a query row " + std::to_string(p[q]) +
                                       " (diverged: try a smaller learning rate)");
      }
      scored.push_back({p[q], t.episode->labels[t.episode->num_support + q]});
    }
  }
  return scored;
}

template Result<size_t> FetchTaskRows(EmbeddingExchange<float>&, const std::vector<Episode>&,
                                      const FetchOptions&, std::vector<TaskRows>*,
                                      std::vector<float>*);
template Result<size_t> FetchTaskRows(EmbeddingExchange<double>&, const std::vector<Episode>&,
                                      const FetchOptions&, std::vector<TaskRows>*,
                                      std::vector<double>*);
template class MetaTrainer<float>;
template class MetaTrainer<double>;

}  // namespace baton::meta
