// Optimizers over one flat parameter buffer: the parameters of every layer laid end to end, with
// a gradient buffer of the same layout. Flat buffers make the gradient one all-reduce, the
// optimizer state one broadcast when a generation re-forms, and the update a loop over a range:
// Step takes [begin, end), which is where a sharded optimizer (PaRO, ZeRO) plugs in by updating
// only its partition. The arithmetic follows torch.optim (SGD with momentum, Adam, AdamW; no
// amsgrad, no nesterov), checked against libtorch's optimizers in tests/train.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "train/train_spec.h"

namespace baton::train {

template <typename T>
class FlatOptimizer {
 public:
  FlatOptimizer(const OptimizerSpec& spec, size_t size);

  // One update of elements [begin, end) at learning rate `lr`. Call once per step for every range
  // of the buffer (the step count advances with EndStep).
  void Update(T* params, const T* grads, size_t begin, size_t end, double lr);
  void EndStep() { ++steps_; }
  int64_t steps() const { return steps_; }

  // The state a checkpoint or a re-forming generation carries: the step count and the moment
  // buffers (sgd: momentum; adam/adamw: first and second moments), each `size` long.
  std::vector<std::vector<T>*> StateBuffers();
  void set_steps(int64_t steps) { steps_ = steps; }

 private:
  OptimizerSpec spec_;
  int64_t steps_ = 0;
  std::vector<T> m_, v_;
};

// The learning rate of step `step` (0-based): linear warm-up from lr/warmup_steps to lr over
// warmup_steps, then constant, or linear or cosine decay to min_lr over decay_steps.
double ScheduledLr(const OptimizerSpec& optimizer, const ScheduleSpec& schedule, int64_t step);

// The L2 norm of `grads`, and when it exceeds `max_norm` (> 0) scales them down to it (as
// torch.nn.utils.clip_grad_norm_: by max_norm / (norm + 1e-6)). Returns the norm before clipping.
template <typename T>
double ClipGradNorm(T* grads, size_t size, double max_norm);

}  // namespace baton::train
