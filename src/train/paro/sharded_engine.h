// ShardedEngine: data-parallel training state partitioned by a PaRO-DP strategy (strategy.h),
// driven layer by layer by the training loop:
//
//   for each micro-step:  for each layer: GatherLayer -> forward -> ReleaseLayer
//                         for each layer, last first: GatherLayer -> backward ->
//                                                     AccumulateGradient -> ReleaseLayer
//   at the boundary:      Step(lr, micro_steps)
//
// The engine holds, per layer, the parameters (full, intra shard or owned chunk), a gradient
// accumulator (likewise) and the optimizer state of its slice, and runs the collectives of the
// paper's table (papers/paro.md §4) at the points above:
//
//   GatherLayer         p = I: all-gather on INTRA;  p = G: all-gather on the world
//   AccumulateGradient  g = N: add locally;  g = I: reduce-scatter on INTRA;  g = G: on the world
//   Step                gradients:  (N,N) all-reduce on the world   (N,G) reduce-scatter on it
//                                   (I,I) all-reduce on INTER       (I,G) reduce-scatter on INTER
//                       update the optimizer slice (os), averaged over world × micro-steps
//                       parameters: (N,I) all-gather on INTRA  (N,G) on the world  (I,G) on INTER
//
// so the ZeRO stages and the PaRO triples run the same kernels and compare fairly. Every strategy
// computes the same update as NNN up to summation order. Calls that communicate are collective:
// every rank makes them in the same order. Buffers are the caller's layer sizes; padding to n
// equal chunks is internal.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "common/status.h"
#include "train/flat_optimizer.h"
#include "train/paro/shard_groups.h"
#include "train/paro/strategy.h"
#include "train/train_spec.h"

namespace baton::train::paro {

// A layer's full optimizer state, as a checkpoint stores it so that it can be re-sharded for
// another grid: one full-size buffer per optimizer moment (optimizer.h's StateBuffers order).
template <typename T>
struct FullLayerState {
  std::vector<T> params;
  std::vector<std::vector<T>> moments;
};

template <typename T>  // float or double
class ShardedEngine {
 public:
  // Collective over `groups`: every rank passes the same arguments. `groups` must outlive the
  // engine. Parameters start at zero: set them with SetParameters.
  static Result<std::unique_ptr<ShardedEngine>> Create(ShardGroups& groups, Strategy strategy,
                                                       std::vector<LayerShape> layers,
                                                       const OptimizerSpec& optimizer);

  Strategy strategy() const { return strategy_; }
  size_t num_layers() const { return layers_.size(); }
  const LayerShape& layer(size_t l) const { return layers_[l].shape; }

  // Sets layer `l` from a full copy (`size` elements, the same on every rank): keeps this rank's
  // part. No communication.
  void SetParameters(size_t l, const T* full);
  // Layer `l`'s full parameters for its forward or backward pass, valid until ReleaseLayer(l): the
  // stored copy when p = N, else gathered (collective) into a buffer that ReleaseLayer frees.
  Result<const T*> GatherLayer(size_t l);
  void ReleaseLayer(size_t l);
  // This rank's gradient of trainable layer `l` for the current micro-step (`size` elements,
  // unscaled), given as soon as the layer's backward finished. Collective when g ≠ N.
  Status AccumulateGradient(size_t l, const T* grad);
  // The optimizer step at the accumulation boundary, after `micro_steps` ≥ 1 micro-steps of
  // AccumulateGradient on every trainable layer (collective). Gradients are averaged over
  // world × micro_steps, as DDP over the world's summed micro-batches would. With
  // max_grad_norm > 0 they are clipped to that global L2 norm over all trainable layers (as
  // torch's clip_grad_norm_) and the norm before clipping is returned; otherwise 0.
  Result<double> Step(double lr, int micro_steps, double max_grad_norm = 0);

  // The full state of layer `l` (collective): for checkpoints (any grid can load it) and tests.
  Result<FullLayerState<T>> ReadLayer(size_t l);
  // Restores layer `l` from a full state saved under any grid, and the optimizer's step count.
  // No communication.
  Status LoadLayer(size_t l, const FullLayerState<T>& state, int64_t optimizer_steps);
  int64_t optimizer_steps() const { return steps_; }

  // Bytes of model state this rank holds now: parameters, gradient accumulators and optimizer
  // state (what ModelStateBytes predicts, plus padding). Gathered layers and communication
  // buffers are transient and counted in peak_transient_bytes().
  StateBytes HeldBytes() const;
  size_t peak_transient_bytes() const { return peak_transient_; }

 private:
  struct Layer {
    LayerShape shape;
    ShardLayout layout;
    std::vector<T> params;                        // ShardSize(p) elements
    std::vector<T> grads;                         // ShardSize(g) elements (trainable only)
    std::vector<T> gathered;                      // the full buffer while gathered (p ≠ N)
    std::unique_ptr<FlatOptimizer<T>> optimizer;  // over ShardSize(os) (trainable only)
  };

  ShardedEngine(ShardGroups& groups, Strategy strategy, const OptimizerSpec& optimizer);
  Status ReduceGradients(Layer& layer, T** slice);
  Status DistributeParameters(Layer& layer);
  void Track(long delta);

  ShardGroups& groups_;
  Strategy strategy_;
  OptimizerSpec optimizer_spec_;
  std::vector<Layer> layers_;
  std::vector<T> scratch_;  // a full padded layer for in-place reduce-scatters
  int64_t steps_ = 0;
  size_t transient_ = 0, peak_transient_ = 0;
};

}  // namespace baton::train::paro
