// G-Meta as a job under the master (`kind: meta`): the training runtime's trainer
// (train/trainer.h: rendezvous generations, exactly-once data from the DDS, flash checkpoints)
// runs the meta-step through two seams it offers:
//
//   TrainableModel  the dense part θ_d: its "forward and backward" over a step's records (episode
//                   numbers from the episode file's index, leased as DDS shards) is the summed
//                   MAML meta-gradient of those tasks; the trainer all-reduces it with its step
//                   flags, divides by the global task count and applies the outer optimizer;
//   StepExtension   what the embedding table adds: the tasks' rows looked up before that (one
//                   deduplicated lookup), their gradients pushed to the owners after the update,
//                   and the whole table (values and optimizer state, gathered from every rank)
//                   as the snapshot's extra part, so that a restore on any world size hands each
//                   rank the rows it owns.
//
// Rank 0 saves θ_d as a meta model file (meta_model.h) at meta.save, and the table beside it
// (SAVE.rows: the gathered export of sharded_embedding.h) from the end-of-data snapshot.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "comm/process_group.h"
#include "meta/embedding_exchange.h"
#include "meta/io/episode_file.h"
#include "meta/meta_model.h"
#include "meta/sharded_embedding.h"
#include "train/model.h"
#include "train/trainer.h"

namespace baton::meta {

struct MetaJobOptions {
  MamlSpec maml;
  SparseOptimizerSpec sparse;
  uint64_t seed = 1;         // the table's initial rows
  double init_scale = 0.05;  // the table's initial rows: uniform in [-init_scale, init_scale]
};

template <typename T>
class MetaJob final : public train::TrainableModel, public train::StepExtension {
 public:
  MetaJob(MetaModel& model, std::shared_ptr<const EpisodeFile> episodes, MetaJobOptions options);

  // train::TrainableModel
  comm::DataType dtype() const override { return model_.dtype(); }
  size_t size() const override { return model_.size(); }
  void* params() override { return model_.params(); }
  void* grads() override { return dense_grad_.data(); }
  Result<double> ForwardBackward(const std::vector<infer::HostTensor>& batch) override;
  void ZeroGrads() override;
  Result<double> EvalLossSum(const std::vector<infer::HostTensor>& batch) override;
  Result<std::vector<double>> Score(const std::string& method,
                                    const std::vector<infer::HostTensor>& inputs) override;
  Result<std::vector<std::string>> MethodInputs(const std::string& method) const override;
  Status Save(const std::string& path) override;
  const std::vector<std::string>& input_names() const override { return input_names_; }

  // train::StepExtension
  Status Form(comm::ProcessGroup& group, const sdk::Generation& gen) override;
  void Leave() override;
  Status BeforeCompute(const std::vector<infer::HostTensor>& batch, int64_t rows) override;
  Status AfterUpdate(int64_t total_rows) override;
  Status SaveState(std::string* extra) override;
  Status LoadState(const std::string& extra) override;

  // Lookups so far (one per step when the design holds).
  int64_t lookups() const { return exchange_ ? exchange_->counters().lookups : 0; }

 private:
  MetaModel& model_;
  std::shared_ptr<const EpisodeFile> episodes_;
  MetaJobOptions options_;
  std::vector<std::string> input_names_ = {"episode"};
  comm::ProcessGroup* group_ = nullptr;
  std::unique_ptr<EmbeddingShard<T>> shard_;
  std::unique_ptr<EmbeddingExchange<T>> exchange_;
  // This step's tasks, their fetched rows and the gradients for them.
  std::vector<Episode> tasks_;
  std::vector<TaskRows> task_rows_;
  std::vector<T> rows_, row_grads_, dense_grad_;
  std::string table_;  // the last gathered table (SaveState), which Save writes
};

}  // namespace baton::meta
