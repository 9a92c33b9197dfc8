// The PaRO-DP cost model and chooser (papers/paro.md §6.2–6.3): for every supported strategy, the
// model-state memory one rank holds and the time of one optimizer step (A micro-steps), from the
// model's size, the grid and the measured link speeds; the chooser drops strategies that do not
// fit the memory budget and picks the fastest.
//
// Time is T = A·t_compute + t_param + t_gradient + t_syncg + t_syncp (+ t_update, the optimizer
// over the rank's slice, measured per element), each communication term a sum of ring
// collectives (α-β model: per ring step a latency α, per byte 1/bandwidth). Collectives run per
// layer, as the engine runs them, so small layers pay latency and a world collective takes the
// hierarchical path only when the layer reaches the threshold (shard_groups.h) — the model picks
// the same path the engine will. Compute is not overlapped with communication (the engine does
// not overlap yet), so the model adds them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "train/paro/strategy.h"

namespace baton::train::paro {

struct LinkSpeeds {
  double intra_bytes_per_s = 0;  // B': between ranks of one node, at the bucket size
  // B: between nodes, per rank, measured with the m INTER rings of a node running at once (so
  // each gets its share of the node's link); a flat world ring, one stream per node link, is
  // charged m·B.
  double inter_bytes_per_s = 0;
  double intra_latency_s = 0;  // α' per ring step inside a node
  double inter_latency_s = 0;  // α per ring step across nodes
};

struct CostInputs {
  Grid grid;
  std::vector<LayerShape> layers;  // the model's buffers, gathered and reduced one at a time
  // How often the training loop gathers each layer per micro-step (p = I or G): 2 (forward and
  // again for backward) unless given here per layer — 1 for a layer whose forward and backward
  // run in one gather, or a frozen layer with nothing trainable below it (no backward).
  std::vector<int> gathers_per_micro_step;
  ElementBytes bytes;
  int micro_steps = 1;   // A
  double compute_s = 0;  // forward + backward of one micro-step
  // The optimizer's time per element it updates (a rank updates its os slice, Ψ'/d(os)): not in
  // the paper's T, but on CPUs an Adam step over a full replica costs as much as a collective.
  double update_s_per_param = 0;
  LinkSpeeds links;
  double hierarchical_threshold_bytes = 1 << 20;  // as ShardGroupsOptions
  double memory_budget_bytes = 0;                 // per rank; 0: unlimited
  double headroom = 0.10;                         // fraction of the budget kept free
  double activation_bytes = 0;  // the same under every strategy; counted in memory
};

// `count` layers of equal size holding `params` elements, the last `trainable_count` of them
// trainable (holding `trainable` elements between them): the shape a plan has before a model is
// loaded, and the shape of the paper's partial and PEFT settings.
std::vector<LayerShape> EqualLayers(double params, int count, double trainable,
                                    int trainable_count);

struct Prediction {
  Strategy strategy;
  StateBytes state;
  double memory_bytes = 0;  // state + one gathered layer + one gradient bucket + activations
  double param_s = 0, gradient_s = 0, syncg_s = 0, syncp_s = 0, update_s = 0;
  double step_s = 0;  // T = A·compute + the five terms
  double tps = 0;     // log(1/T), the paper's throughput indicator
  bool fits = true;
};

// Every supported strategy, in SupportedStrategies() order. Inputs must be valid (Validate).
std::vector<Prediction> PredictAll(const CostInputs& in);
Status Validate(const CostInputs& in);
// The fastest strategy that fits (of equally fast ones, the one needing less memory); an error
// naming the smallest memory need when none fits.
// `allowed` (when given) narrows the candidates, e.g. to what a job kind can run.
Result<Prediction> Choose(const CostInputs& in,
                          const std::function<bool(Strategy)>& allowed = nullptr);

}  // namespace baton::train::paro
