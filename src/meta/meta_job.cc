#include "meta/meta_job.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/files.h"
#include "meta/meta_trainer.h"
#include "meta/task_batch.h"

namespace baton::meta {

template <typename T>
MetaJob<T>::MetaJob(MetaModel& model, std::shared_ptr<const EpisodeFile> episodes,
                    MetaJobOptions options)
    : model_(model),
      episodes_(std::move(episodes)),
      options_(options),
      dense_grad_(model.size(), T{0}) {}

template <typename T>
Status MetaJob<T>::Form(comm::ProcessGroup& group, const sdk::Generation& gen) {
  group_ = &group;
  typename EmbeddingShard<T>::Options o;
  o.dim = model_.embedding_dim();
  o.rank = gen.rank;
  o.world = gen.size();
  o.seed = options_.seed;
  o.init_scale = options_.init_scale;
  o.optimizer = options_.sparse;
  shard_ = std::make_unique<EmbeddingShard<T>>(o);  // filled by LoadState after the restore
  exchange_ = std::make_unique<EmbeddingExchange<T>>(&group, shard_.get());
  return Status::Ok();
}

template <typename T>
void MetaJob<T>::Leave() {
  exchange_.reset();
  group_ = nullptr;
}

template <typename T>
Status MetaJob<T>::BeforeCompute(const std::vector<infer::HostTensor>& batch, int64_t rows) {
  tasks_.clear();
  if (rows > 0) {
    if (batch.empty() || batch[0].type != infer::TensorType::kInt64 ||
        batch[0].i.size() < static_cast<size_t>(rows)) {
      return Status::InvalidArgument("a meta step's records must be episode numbers");
    }
    for (int64_t k = 0; k < rows; ++k) {
      const int64_t e = batch[0].i[static_cast<size_t>(k)];
      if (e < 0 || static_cast<size_t>(e) >= episodes_->size()) {
        return Status::InvalidArgument("episode " + std::to_string(e) + " is not in " +
                                       episodes_->path() + " (" +
                                       std::to_string(episodes_->size()) + " episodes)");
      }
      BATON_ASSIGN_OR_RETURN(Episode ep, episodes_->Read(static_cast<size_t>(e)));
      BATON_RETURN_IF_ERROR(CheckTaskShape(ep, model_.num_dense(), model_.num_sparse()));
      tasks_.push_back(std::move(ep));
    }
  }
  // One deduplicated lookup for every id of the step's tasks, support and query.
  BATON_RETURN_IF_ERROR(FetchTaskRows(*exchange_, tasks_, {}, &task_rows_, &rows_).status());
  row_grads_.assign(rows_.size(), T{0});
  return Status::Ok();
}

template <typename T>
Result<double> MetaJob<T>::ForwardBackward(const std::vector<infer::HostTensor>& batch) {
  const size_t num_rows = rows_.size() / static_cast<size_t>(model_.embedding_dim());
  return model_.MetaGradient(task_rows_, rows_.data(), num_rows, options_.maml, dense_grad_.data(),
                             row_grads_.data());
}

template <typename T>
void MetaJob<T>::ZeroGrads() {
  std::fill(dense_grad_.begin(), dense_grad_.end(), T{0});
  std::fill(row_grads_.begin(), row_grads_.end(), T{0});
}

template <typename T>
Status MetaJob<T>::AfterUpdate(int64_t total_rows) {
  return exchange_->Push(row_grads_.data(), 1.0 / static_cast<double>(total_rows));
}

template <typename T>
Status MetaJob<T>::SaveState(std::string* extra) {
  std::string mine;
  shard_->Export(&mine);
  // Every rank's export on every rank, in rank order: lengths first, then the padded bytes.
  const size_t world = static_cast<size_t>(group_->size());
  int64_t length = static_cast<int64_t>(mine.size());
  std::vector<int64_t> lengths(world);
  BATON_RETURN_IF_ERROR(group_->AllGather(&length, lengths.data(), 1, comm::DataType::kInt64));
  const size_t words =
      (static_cast<size_t>(*std::max_element(lengths.begin(), lengths.end())) + 7) / 8;
  std::vector<int64_t> send(words, 0), all(words * world);
  std::memcpy(send.data(), mine.data(), mine.size());
  BATON_RETURN_IF_ERROR(group_->AllGather(send.data(), all.data(), words, comm::DataType::kInt64));
  extra->clear();
  for (size_t r = 0; r < world; ++r) {
    if (lengths[r] < 0 || static_cast<size_t>(lengths[r]) > words * 8) {
      return Status::InvalidArgument("rank " + std::to_string(r) + " sent a broken table export");
    }
    extra->append(reinterpret_cast<const char*>(all.data() + r * words),
                  static_cast<size_t>(lengths[r]));
  }
  table_ = *extra;
  return Status::Ok();
}

template <typename T>
Status MetaJob<T>::LoadState(const std::string& extra) {
  table_ = extra;
  return shard_->Import(extra).WithContext("restoring the embedding table");
}

template <typename T>
Status MetaJob<T>::Save(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return Status::IoError("cannot create the folder of " + path + ": " + ec.message());
  BATON_RETURN_IF_ERROR(model_.Save(path));
  return WriteFileAtomic(path + ".rows", table_);
}

template <typename T>
Result<double> MetaJob<T>::EvalLossSum(const std::vector<infer::HostTensor>&) {
  return Status::InvalidArgument("kind: meta has no train.eval split (use baton-meta-train)");
}

template <typename T>
Result<std::vector<double>> MetaJob<T>::Score(const std::string&,
                                              const std::vector<infer::HostTensor>&) {
  return Status::InvalidArgument("kind: meta has no scoring method (use baton-meta-train)");
}

template <typename T>
Result<std::vector<std::string>> MetaJob<T>::MethodInputs(const std::string&) const {
  return input_names_;
}

template class MetaJob<float>;
template class MetaJob<double>;

}  // namespace baton::meta
