#include "train/plan.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "train/flat_optimizer.h"
#include "train/paro/cost_model.h"

namespace baton::train {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The median of `reps` timings of `op` (after one untimed call).
template <typename Op>
Result<double> Median(int reps, Op op) {
  BATON_RETURN_IF_ERROR(op());
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    BATON_RETURN_IF_ERROR(op());
    t.push_back(Seconds(std::chrono::steady_clock::now() - t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

template <typename T>
double UpdateSecondsPerElement(const OptimizerSpec& spec, size_t n) {
  n = std::min<size_t>(n, size_t{1} << 22);
  std::vector<T> params(n, T(0.5)), grads(n, T(0.01));
  FlatOptimizer<T> optimizer(spec, n);
  auto t = Median(3, [&] {
    optimizer.Update(params.data(), grads.data(), 0, n, 1e-3);
    optimizer.EndStep();
    return Status::Ok();
  });
  return *t / static_cast<double>(n);
}

// What one rank of a kind: train job holds for its model, which is more than the strategy's
// model state (the table's column): the model's own parameter and gradient buffers and the step's
// all-reduce buffer always; with sharding also the engine's copy of the parameters, its gradient
// accumulator and its reduce-scatter bucket (paro/sharded_step.h). Padding ignored.
double KindTrainBytes(paro::Strategy s, const paro::Grid& grid, double params, double element,
                      double state_bytes_per_param) {
  const double base = 3 * params * element;
  if (s == paro::Strategy{}) return base + state_bytes_per_param * params;
  const double bucket = s.g == paro::Granularity::kNone ? 0 : params * element;
  return base + params * element + params * element / grid.Divisor(s.g) + bucket +
         state_bytes_per_param * params / grid.Divisor(s.os);
}

}  // namespace

Status PrintPlan(const TrainSpec& spec, int spec_nodes, int spec_workers, TrainableModel& model,
                 const std::vector<infer::HostTensor>& batch, int64_t batch_rows,
                 const PlanOptions& options, std::FILE* out) {
  const int nodes = options.nodes > 0 ? options.nodes : spec_nodes;
  const int per_node = options.per_node > 0 ? options.per_node : spec_workers;
  if (nodes < 1 || per_node < 1) return Status::InvalidArgument("--nodes and --per-node: >= 1");
  if (options.intra_gbit_per_s <= 0 || options.inter_gbit_per_s <= 0 || options.memory_gb < 0) {
    return Status::InvalidArgument("--intra-gbps and --inter-gbps: > 0; --memory-gb: >= 0");
  }
  BATON_ASSIGN_OR_RETURN(double compute_s, Median(3, [&]() -> Status {
                           return model.ForwardBackward(batch).status();
                         }));
  const bool f64 = model.dtype() == comm::DataType::kFloat64;
  const double element = f64 ? 8 : 4;
  const double update = f64 ? UpdateSecondsPerElement<double>(spec.optimizer, model.size())
                            : UpdateSecondsPerElement<float>(spec.optimizer, model.size());
  const double moments =
      static_cast<double>(FlatOptimizer<float>(spec.optimizer, 1).StateBuffers().size());

  paro::CostInputs in;
  in.grid = {nodes, per_node};
  in.layers = {{model.size(), true}};  // kind: train reduces the model as one buffer
  in.bytes = {.param = element, .grad = element, .optimizer = moments * element};
  in.micro_steps = 1;  // one reduction a step (micro-batches add up locally)
  in.compute_s = compute_s;
  in.update_s_per_param = update;
  in.links = {.intra_bytes_per_s = options.intra_gbit_per_s * 1e9 / 8,
              .inter_bytes_per_s = options.inter_gbit_per_s * 1e9 / 8 / per_node,
              .intra_latency_s = options.intra_latency_us * 1e-6,
              .inter_latency_s = options.inter_latency_us * 1e-6};
  BATON_RETURN_IF_ERROR(paro::Validate(in));
  const double budget = options.memory_gb * 1e9 * (1 - in.headroom);
  const double psi = static_cast<double>(model.size());
  auto kind_train_bytes = [&](paro::Strategy s) {
    return KindTrainBytes(s, in.grid, psi, element, in.bytes.optimizer);
  };
  auto runnable_here = [](paro::Strategy s) { return s.p == paro::Granularity::kNone; };
  auto fits = [&](paro::Strategy s) { return budget <= 0 || kind_train_bytes(s) <= budget; };

  std::fprintf(
      out,
      "plan for %s: %zu parameters (%s), %d node(s) x %d rank(s), %lld rows a rank a "
      "step: forward+backward %.2f ms (measured here), optimizer %.3f ns/parameter; "
      "links intra %.0f Gbit/s, inter %.0f Gbit/s a node; memory budget %s\n",
      spec.spec_path.c_str(), model.size(), f64 ? "fp64" : "fp32", nodes, per_node,
      static_cast<long long>(batch_rows), compute_s * 1e3, update * 1e9, options.intra_gbit_per_s,
      options.inter_gbit_per_s,
      options.memory_gb > 0 ? (std::to_string(options.memory_gb) + " GB").c_str() : "none");
  std::fprintf(out, "%-8s %-8s %15s %14s %13s %10s  %s\n", "strategy", "alias", "model_state_MB",
               "kind_train_MB", "predicted_ms", "log(1/T)", "kind: train");
  for (const paro::Prediction& p : paro::PredictAll(in)) {
    const bool runnable = runnable_here(p.strategy);
    char held[32] = "-";
    if (runnable) std::snprintf(held, sizeof held, "%.1f", kind_train_bytes(p.strategy) / 1e6);
    const char* verdict = !runnable          ? "no (shards parameters)"
                          : fits(p.strategy) ? "yes"
                                             : "yes, does not fit";
    std::fprintf(out, "%-8s %-8s %15.1f %14s %13.3f %10.3f  %s\n",
                 paro::StrategyName(p.strategy).c_str(),
                 std::string(paro::StrategyAlias(p.strategy)).c_str(), p.state.total() / 1e6, held,
                 p.step_s * 1e3, p.tps, verdict);
  }
  auto candidate = [&](paro::Strategy s) { return runnable_here(s) && fits(s); };
  bool any = false;
  for (paro::Strategy s : paro::SupportedStrategies()) any = any || candidate(s);
  if (!any) {
    char msg[160];
    std::snprintf(msg, sizeof msg,
                  "no strategy kind: train can run fits %g GB per rank (less 10%% headroom): see "
                  "kind_train_MB",
                  options.memory_gb);
    return Status::InvalidArgument(msg);
  }
  BATON_ASSIGN_OR_RETURN(paro::Prediction pick, paro::Choose(in, candidate));
  std::fprintf(out, "pick: train.sharding: %s\n", paro::StrategyName(pick.strategy).c_str());
  return Status::Ok();
}

}  // namespace baton::train
