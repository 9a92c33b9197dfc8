#include "train/paro/cost_model.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace baton::train::paro {
namespace {

// Ring collectives over one layer's buffer of `bytes` (the whole buffer the collective covers).
class Rings {
 public:
  explicit Rings(const CostInputs& in)
      : in_(in), m_(in.grid.per_node), g_(in.grid.nodes), n_(in.grid.world()) {}

  // All-gather and reduce-scatter cost the same on a ring; all-reduce is both.
  double Intra(double bytes) const {
    return Ring(m_, bytes, in_.links.intra_bytes_per_s, in_.links.intra_latency_s);
  }
  double Inter(double bytes) const {
    return Ring(g_, bytes, in_.links.inter_bytes_per_s, in_.links.inter_latency_s);
  }
  double World(double bytes) const {
    if (g_ >= 2 && m_ >= 2 && bytes >= in_.hierarchical_threshold_bytes) {
      return Intra(bytes) + Inter(bytes / m_);  // RS: INTRA then INTER (AG: the reverse)
    }
    // The flat ring runs at its slowest hop: an inter-node link when there are several nodes,
    // which carries one stream of the ring where the INTER rings shared it m ways.
    const bool one_node = g_ == 1;
    return Ring(n_, bytes,
                one_node ? in_.links.intra_bytes_per_s : m_ * in_.links.inter_bytes_per_s,
                one_node ? in_.links.intra_latency_s : in_.links.inter_latency_s);
  }
  double WorldAllReduce(double bytes) const {
    if (g_ >= 2 && m_ >= 2 && bytes >= in_.hierarchical_threshold_bytes) {
      return 2 * Intra(bytes) + 2 * Inter(bytes / m_);
    }
    return 2 * World(bytes);
  }

 private:
  static double Ring(int members, double bytes, double bytes_per_s, double latency_s) {
    if (members <= 1) return 0;
    const double steps = members - 1;
    return steps / members * bytes / bytes_per_s + steps * latency_s;
  }
  const CostInputs& in_;
  int m_, g_, n_;
};

Prediction Predict(const CostInputs& in, Strategy s) {
  using G = Granularity;
  const Rings rings(in);
  const double A = in.micro_steps;
  const double m = in.grid.per_node;
  Prediction p;
  p.strategy = s;
  double params = 0, trainable = 0, largest = 0, largest_trainable = 0;
  for (size_t l = 0; l < in.layers.size(); ++l) {
    const LayerShape& layer = in.layers[l];
    const double gathers =
        l < in.gathers_per_micro_step.size() ? in.gathers_per_micro_step[l] : 2.0;
    const double n = static_cast<double>(layer.size);
    const double sp = in.bytes.param * n;  // this layer's parameters
    params += n;
    largest = std::max(largest, n);
    // Forward gather and backward re-gather, every micro-step.
    if (s.p == G::kIntra) p.param_s += gathers * A * rings.Intra(sp);
    if (s.p == G::kGlobal) p.param_s += gathers * A * rings.World(sp);
    if (!layer.trainable) continue;
    trainable += n;
    p.update_s += n / in.grid.Divisor(s.os) * in.update_s_per_param;
    largest_trainable = std::max(largest_trainable, n);
    const double sg = in.bytes.grad * n;
    // Gradient reduce-scatter as the layer's backward finishes, every micro-step.
    if (s.g == G::kIntra) p.gradient_s += A * rings.Intra(sg);
    if (s.g == G::kGlobal) p.gradient_s += A * rings.World(sg);
    // At the boundary: the rest of the gradient reduction (by g, os) ...
    if (s.g == G::kNone && s.os == G::kNone) p.syncg_s += rings.WorldAllReduce(sg);
    if (s.g == G::kNone && s.os == G::kGlobal) p.syncg_s += rings.World(sg);
    if (s.g == G::kIntra && s.os == G::kIntra) p.syncg_s += 2 * rings.Inter(sg / m);
    if (s.g == G::kIntra && s.os == G::kGlobal) p.syncg_s += rings.Inter(sg / m);
    // ... and the parameter redistribution after the update (by p, os).
    if (s.p == G::kNone && s.os == G::kIntra) p.syncp_s += rings.Intra(sp);
    if (s.p == G::kNone && s.os == G::kGlobal) p.syncp_s += rings.World(sp);
    if (s.p == G::kIntra && s.os == G::kGlobal) p.syncp_s += rings.Inter(sp / m);
  }
  p.step_s = A * in.compute_s + p.param_s + p.gradient_s + p.syncg_s + p.syncp_s + p.update_s;
  p.tps = std::log(1.0 / p.step_s);

  p.state = ModelStateBytes(s, in.grid, params, trainable, in.bytes);
  double transient = in.activation_bytes;
  if (s.p != G::kNone) transient += in.bytes.param * largest;           // one gathered layer
  if (s.g != G::kNone) transient += in.bytes.grad * largest_trainable;  // one gradient bucket
  p.memory_bytes = p.state.total() + transient;
  p.fits =
      in.memory_budget_bytes <= 0 || p.memory_bytes <= in.memory_budget_bytes * (1.0 - in.headroom);
  return p;
}

}  // namespace

Status Validate(const CostInputs& in) {
  if (in.grid.nodes < 1 || in.grid.per_node < 1) return Status::InvalidArgument("empty grid");
  if (in.layers.empty()) return Status::InvalidArgument("the model has no layers");
  bool any_trainable = false;
  for (const LayerShape& layer : in.layers) {
    if (layer.size == 0) return Status::InvalidArgument("a layer has no parameters");
    any_trainable = any_trainable || layer.trainable;
  }
  if (!any_trainable) return Status::InvalidArgument("no layer is trainable");
  if (in.micro_steps < 1) return Status::InvalidArgument("micro_steps must be >= 1");
  if (!in.gathers_per_micro_step.empty() && in.gathers_per_micro_step.size() != in.layers.size()) {
    return Status::InvalidArgument("gathers_per_micro_step needs one entry per layer");
  }
  if (in.compute_s < 0) return Status::InvalidArgument("compute time must be >= 0");
  if (in.links.intra_bytes_per_s <= 0 || in.links.inter_bytes_per_s <= 0) {
    return Status::InvalidArgument("link bandwidths must be > 0");
  }
  if (in.headroom < 0 || in.headroom >= 1) return Status::InvalidArgument("headroom in [0, 1)");
  return Status::Ok();
}

std::vector<LayerShape> EqualLayers(double params, int count, double trainable,
                                    int trainable_count) {
  std::vector<LayerShape> layers;
  const int frozen = count - trainable_count;
  for (int l = 0; l < frozen; ++l) {
    layers.push_back({static_cast<size_t>((params - trainable) / frozen), false});
  }
  for (int l = 0; l < trainable_count; ++l) {
    layers.push_back({static_cast<size_t>(trainable / trainable_count), true});
  }
  return layers;
}

std::vector<Prediction> PredictAll(const CostInputs& in) {
  std::vector<Prediction> out;
  for (Strategy s : SupportedStrategies()) out.push_back(Predict(in, s));
  return out;
}

Result<Prediction> Choose(const CostInputs& in, const std::function<bool(Strategy)>& allowed) {
  BATON_RETURN_IF_ERROR(Validate(in));
  const std::vector<Prediction> all = PredictAll(in);
  const Prediction* best = nullptr;
  const Prediction* smallest = nullptr;  // of the allowed ones
  for (const Prediction& p : all) {
    if (allowed && !allowed(p.strategy)) continue;
    if (smallest == nullptr || p.memory_bytes < smallest->memory_bytes) smallest = &p;
    if (!p.fits) continue;
    const bool faster = best == nullptr || p.step_s < best->step_s * (1 - 1e-9);
    const bool as_fast_smaller = best != nullptr && p.step_s <= best->step_s * (1 + 1e-9) &&
                                 p.memory_bytes < best->memory_bytes;
    if (faster || as_fast_smaller) best = &p;
  }
  if (smallest == nullptr) return Status::InvalidArgument("no sharding strategy is allowed");
  if (best == nullptr) {
    char msg[256];
    std::snprintf(msg, sizeof msg,
                  "no sharding strategy fits %.3g bytes per rank (less %.0f%% headroom): the "
                  "smallest, %s, needs %.3g",
                  in.memory_budget_bytes, in.headroom * 100,
                  StrategyName(smallest->strategy).c_str(), smallest->memory_bytes);
    return Status::InvalidArgument(msg);
  }
  return *best;
}

}  // namespace baton::train::paro
