// The flat optimizers against libtorch's own (torch::optim), the reference users know: the same
// parameters after several steps with weight decay and momentum, in float64.
#include "train/flat_optimizer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <vector>

namespace baton::train {
namespace {

constexpr int kSize = 37;
constexpr int kSteps = 25;

// Runs kSteps of `flat` and of `reference` (an optimizer over the one tensor `p`) on the same
// random gradients at learning rate `lr`; returns the largest relative difference.
template <typename MakeReference>
double Compare(const OptimizerSpec& spec, double lr, MakeReference make_reference) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal;
  std::vector<double> params(kSize), grads(kSize);
  for (double& v : params) v = normal(rng);
  torch::Tensor p = torch::tensor(params, torch::kFloat64).requires_grad_(true);
  auto reference = make_reference(p);
  FlatOptimizer<double> flat(spec, kSize);
  for (int step = 0; step < kSteps; ++step) {
    for (double& g : grads) g = normal(rng);
    p.mutable_grad() = torch::tensor(grads, torch::kFloat64);
    reference->step();
    flat.Update(params.data(), grads.data(), 0, kSize, lr);
    flat.EndStep();
  }
  double worst = 0;
  auto ref = p.detach();
  for (int i = 0; i < kSize; ++i) {
    const double r = ref[i].item<double>();
    worst = std::max(worst, std::abs(params[i] - r) / std::max(1.0, std::abs(r)));
  }
  return worst;
}

TEST(FlatOptimizer, SgdWithMomentumAndWeightDecayMatchesTorch) {
  OptimizerSpec spec{
      .kind = OptimizerKind::kSgd, .lr = 0.05, .momentum = 0.9, .weight_decay = 0.01};
  const double diff = Compare(spec, spec.lr, [&](torch::Tensor p) {
    return std::make_unique<torch::optim::SGD>(
        std::vector<torch::Tensor>{p},
        torch::optim::SGDOptions(spec.lr).momentum(spec.momentum).weight_decay(spec.weight_decay));
  });
  EXPECT_LT(diff, 1e-12);
}

TEST(FlatOptimizer, AdamWithL2MatchesTorch) {
  OptimizerSpec spec{.kind = OptimizerKind::kAdam,
                     .lr = 0.01,
                     .beta1 = 0.8,
                     .beta2 = 0.99,
                     .eps = 1e-6,
                     .weight_decay = 0.1};
  const double diff = Compare(spec, spec.lr, [&](torch::Tensor p) {
    return std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{p},
                                                torch::optim::AdamOptions(spec.lr)
                                                    .betas({spec.beta1, spec.beta2})
                                                    .eps(spec.eps)
                                                    .weight_decay(spec.weight_decay));
  });
  EXPECT_LT(diff, 1e-12);
}

TEST(FlatOptimizer, AdamWDecoupledDecayMatchesTorch) {
  OptimizerSpec spec{.kind = OptimizerKind::kAdamW, .lr = 0.02, .weight_decay = 0.05};
  const double diff = Compare(spec, spec.lr, [&](torch::Tensor p) {
    return std::make_unique<torch::optim::AdamW>(
        std::vector<torch::Tensor>{p},
        torch::optim::AdamWOptions(spec.lr).weight_decay(spec.weight_decay));
  });
  EXPECT_LT(diff, 1e-12);
}

TEST(FlatOptimizer, RangesUpdateOnlyTheirElementsAndTogetherEqualOneUpdate) {
  OptimizerSpec spec{.kind = OptimizerKind::kAdam, .lr = 0.01};
  std::vector<double> a(10, 1.0), b(10, 1.0), g(10);
  for (int i = 0; i < 10; ++i) g[i] = 0.1 * (i - 5);
  FlatOptimizer<double> whole(spec, 10), parts(spec, 10);
  whole.Update(a.data(), g.data(), 0, 10, 0.01);
  parts.Update(b.data(), g.data(), 0, 4, 0.01);
  EXPECT_EQ(b[4], 1.0);  // not yet updated
  parts.Update(b.data(), g.data(), 4, 10, 0.01);
  EXPECT_EQ(a, b);
}

TEST(ScheduledLr, WarmsUpLinearlyThenDecaysToTheFloor) {
  OptimizerSpec o{.lr = 1.0};
  ScheduleSpec cosine{
      .warmup_steps = 4, .decay = LrDecay::kCosine, .decay_steps = 10, .min_lr = 0.1};
  EXPECT_DOUBLE_EQ(ScheduledLr(o, cosine, 0), 0.25);
  EXPECT_DOUBLE_EQ(ScheduledLr(o, cosine, 3), 1.0);
  EXPECT_DOUBLE_EQ(ScheduledLr(o, cosine, 4), 1.0);
  EXPECT_NEAR(ScheduledLr(o, cosine, 9), 0.1 + 0.9 * 0.5, 1e-12);  // half way
  EXPECT_DOUBLE_EQ(ScheduledLr(o, cosine, 14), 0.1);
  EXPECT_DOUBLE_EQ(ScheduledLr(o, cosine, 1000), 0.1);
  ScheduleSpec linear{.decay = LrDecay::kLinear, .decay_steps = 4};
  EXPECT_DOUBLE_EQ(ScheduledLr(o, linear, 2), 0.5);
  EXPECT_DOUBLE_EQ(ScheduledLr(o, ScheduleSpec{}, 123), 1.0);
}

TEST(ClipGradNorm, ScalesDownToTheNormLikeTorch) {
  std::vector<double> g = {3.0, 4.0};
  EXPECT_DOUBLE_EQ(ClipGradNorm(g.data(), g.size(), 10.0), 5.0);
  EXPECT_EQ(g, (std::vector<double>{3.0, 4.0}));  // under the bound: untouched
  EXPECT_DOUBLE_EQ(ClipGradNorm(g.data(), g.size(), 1.0), 5.0);
  torch::Tensor t = torch::tensor({3.0, 4.0}, torch::kFloat64).requires_grad_(true);
  t.mutable_grad() = torch::tensor({3.0, 4.0}, torch::kFloat64);
  torch::nn::utils::clip_grad_norm_(std::vector<torch::Tensor>{t}, 1.0);
  EXPECT_NEAR(g[0], t.grad()[0].item<double>(), 1e-15);
  EXPECT_NEAR(g[1], t.grad()[1].item<double>(), 1e-15);
}

}  // namespace
}  // namespace baton::train
