// Trainer: synchronous data-parallel training of one worker's model with the other members of its
// rendezvous generation (sdk/rendezvous.h).
//
// Each step every rank takes its part of train.global_batch from its DataFeed (the equal split,
// rank r of W gets B/W, one more for r < B mod W, until the master's straggler policy publishes
// another: batch_split.h), runs forward and backward (in micro-batches when the plan says so:
// gradient accumulation), and the flat gradients are all-reduced (SUM) and divided by the samples
// of the step, so unequal parts are correct. The flat optimizer then updates every rank's
// identical copy of the parameters.
//
// Membership: a failed collective (a peer died) or an ended generation (GenerationWatch: scale,
// a worker joining) drops the group; the worker joins the next generation, and every member rolls
// back to the best flash checkpoint any of them has (train/checkpointer.h: parameters, optimizer
// state and data progress), so every record is applied exactly once per epoch. The loss curve
// goes on from that checkpoint (at most train.checkpoint.every_steps back); new workers start
// from it too.
//
// The end: when no rank has records and some still hold shards, a checkpoint is persisted, rank 0
// saves the model (train.save), and only then are those shards committed, so the job cannot
// finish before the trained model is on disk. Seam for sharded optimizers: the optimizer's ranged
// update (FlatOptimizer::Update).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/process_group.h"
#include "common/status.h"
#include "sdk/rendezvous.h"
#include "sdk/worker.h"
#include "train/checkpointer.h"
#include "train/data_feed.h"
#include "train/evaluator.h"
#include "train/model.h"
#include "train/train_spec.h"

namespace baton::train {

// What a job kind adds around the data-parallel step, for a kind whose state is more than the
// model's flat buffers (G-Meta, src/meta/meta_job.h: the embedding rows a step needs are looked
// up before its forward and backward, their gradients pushed to their owners after the update,
// and the row-sharded table rides in every snapshot). Every hook runs on every rank at the same
// point of the same step, so hooks may run collectives on the generation's group. A hook's
// kUnavailable or kDeadlineExceeded (a peer failed) drops the group like a failed all-reduce:
// the next generation rolls back to a snapshot; any other error stops the worker.
class StepExtension {
 public:
  virtual ~StepExtension() = default;
  // Generation `gen` formed over `group` (before its restore).
  virtual Status Form(comm::ProcessGroup& group, const sdk::Generation& gen) = 0;
  // The group is about to close.
  virtual void Leave() = 0;
  // Before the forward and backward of this rank's `rows` records of `batch` (also with none).
  virtual Status BeforeCompute(const std::vector<infer::HostTensor>& batch, int64_t rows) = 0;
  // After the optimizer applied the gradient summed over `total_rows` records of all ranks.
  virtual Status AfterUpdate(int64_t total_rows) = 0;
  // The snapshot's extra part (TrainingBuffers::extra): written before every snapshot, the same
  // on every rank; read after every restore (empty for a new job).
  virtual Status SaveState(std::string* extra) = 0;
  virtual Status LoadState(const std::string& extra) = 0;
};

struct TrainerOptions {
  // Waiting for a generation to form; the master forms it as soon as every planned worker has
  // joined, so this only bounds a job whose workers cannot start. Default 10 min.
  std::chrono::milliseconds join_timeout{600000};
  // Bound on forming a process group and on each collective: a peer silent this long (stopped,
  // or a hung host) is treated as dead. Default 60 s.
  std::chrono::milliseconds collective_timeout{60000};
  // Rank 0 logs step, loss and throughput this often. Default 5 s.
  std::chrono::milliseconds log_every{5000};
  CheckpointOptions checkpoint;
  // Set (by a SIGTERM handler) to leave between steps, cleanly: the summary, the memory slots.
  const std::atomic<bool>* stop = nullptr;
  // The held-out split (train.eval), run by rank 0; null: none.
  const Evaluator* evaluator = nullptr;
  // A job kind's hooks around the step; null: none. Not with train.sharding, and a step's
  // records go through the model in one pass (no micro-batches).
  StepExtension* extension = nullptr;
};

class Trainer {
 public:
  Trainer(const TrainSpec& spec, TrainableModel& model, sdk::Worker& worker,
          sdk::Rendezvous& rendezvous, TrainerOptions options = {});
  // Trains until the job has no more data. InvalidArgument for an error of the model (forward
  // fails, wrong output); other errors are the master's or the network's.
  Status Run();

  int64_t steps() const { return steps_; }

 private:
  template <typename T>
  Status RunTyped();
  // Forward and backward over the `rows` rows of `batch` in passes of at most `micro` rows (0:
  // one pass); the sum of the per-sample gradients lands in `grad_sum` (the model's layout).
  // Returns the sum of the per-sample losses.
  Result<double> ForwardBackward(const std::vector<infer::HostTensor>& batch, int64_t rows,
                                 int64_t micro, void* grad_sum);
  // Rank 0: scores the held-out split, logs it and sets the train.eval_* gauges.
  Status Evaluate(std::string_view when);

  const TrainSpec& spec_;
  TrainableModel& model_;
  sdk::Worker& worker_;
  sdk::Rendezvous& rendezvous_;
  TrainerOptions options_;
  DataFeed feed_;
  Checkpointer checkpointer_;
  int64_t steps_ = 0;
};

}  // namespace baton::train
