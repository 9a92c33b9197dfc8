// ShardedStep: the optimizer step of a `kind: train` job under a PaRO-DP strategy that keeps the
// parameters replicated (train.sharding: NNG = ZeRO-1, NGG = ZeRO-2, NIG, NII; NNN is the
// trainer's own all-reduce). One per rendezvous generation, over that generation's group.
//
// The trainer's model computes with one flat parameter buffer every rank holds whole, so the
// strategies that shard parameters (p = I or G) need per-layer gathers inside the model's forward,
// which a TorchScript module does not offer: they are refused by the spec (train_spec.cc).
// Gradients and optimizer state are sharded as the strategy says (sharded_engine.h), the model is
// one engine layer, and the updated parameters are copied back into the model's buffer.
//
// Snapshots stay whole: Export gathers the optimizer state into full buffers for the
// checkpointer, and a restore loads a full snapshot and keeps this rank's part, so a job resumes on
// any world size, and under any strategy (or none) — the snapshot format is NNN's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "comm/process_group.h"
#include "common/status.h"
#include "sdk/rendezvous.h"
#include "train/checkpointer.h"
#include "train/paro/shard_groups.h"
#include "train/paro/sharded_engine.h"
#include "train/paro/strategy.h"
#include "train/train_spec.h"

namespace baton::train::paro {

// The grid of a generation: its nodes × ranks per node when every node has the same count and
// ranks are numbered node by node, else one rank per "node" (INTRA of one: I behaves as N), so
// that a strategy always runs, with less locality on an uneven membership.
Grid GridOf(const sdk::Generation& gen);

template <typename T>
class ShardedStep {
 public:
  // Collective over `group` (generation `gen`'s).
  static Result<std::unique_ptr<ShardedStep>> Create(comm::ProcessGroup& group,
                                                     const sdk::Generation& gen, Strategy strategy,
                                                     AllReduceMode world_path, size_t elements,
                                                     const OptimizerSpec& optimizer);

  // One step (collective): `grad_sum` is this rank's gradient summed over its rows (clobbered),
  // `total_rows` the rows of the step over all ranks; `params` (the model's buffer) ends updated,
  // the same on every rank. Returns the gradient norm before clipping when max_grad_norm > 0.
  Result<double> Apply(T* params, T* grad_sum, int64_t total_rows, double lr, double max_grad_norm);

  // For Checkpointer::Take: gathers the optimizer state (collective) and returns buffers holding
  // `params` and the full state, valid until ReleaseStaging (call it once Take returned).
  Result<TrainingBuffers> ExportForSnapshot(T* params);
  void ReleaseStaging() { std::vector<std::vector<T>>().swap(staging_); }
  // For Checkpointer::Restore: buffers to restore into (`params` and full-size staging for the
  // optimizer state); then LoadRestored keeps this rank's part and frees the staging.
  TrainingBuffers BuffersForRestore(T* params);
  Status LoadRestored(const T* params, int64_t optimizer_steps);

  Grid grid() const { return groups_->grid(); }

 private:
  ShardedStep() = default;
  // `params` and the staging as the checkpointer's buffers.
  TrainingBuffers Staged(T* params);

  std::unique_ptr<ShardGroups> groups_;
  std::unique_ptr<ShardedEngine<T>> engine_;
  size_t elements_ = 0;
  size_t moments_ = 0;  // the optimizer's state buffers (0, 1 or 2)
  std::vector<std::vector<T>> staging_;
};

}  // namespace baton::train::paro
