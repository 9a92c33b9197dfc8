// paro_test_worker: one rank of a PaRO-DP multi-process test (paro_multiprocess_test.cc spawns
// nodes × per_node of these on loopback). Each rank trains a synthetic layered model under
// ShardedEngine and checks its results against a reference it computes alone: plain data
// parallel arithmetic on full buffers (the sum of every rank's micro-step gradients, averaged,
// then the optimizer). It exits 0 only if everything matched. Modes:
//   equivalence  every strategy × {full, partial, PEFT training} × {flat, hierarchical world
//                collectives}: parameters after K steps with accumulation equal the reference
//   reshard      --phase save: train K steps under --strategy and write the full state to
//                --state; --phase load: load it (saved on any grid), train K more, compare with
//                2K reference steps
//   step         kind: train's sharded step: export after 3 steps, restore on another grid
//   memory       every strategy: the heap bytes the engine's model state takes (measured with
//                mallinfo2) against ModelStateBytes, within 5 %
#include <malloc.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "comm/file_store.h"
#include "comm/process_group.h"
#include "train/flat_optimizer.h"
#include "train/paro/shard_groups.h"
#include "train/paro/sharded_engine.h"
#include "train/paro/sharded_step.h"
#include "train/paro/strategy.h"

namespace baton::train::paro {
namespace {

struct Args {
  std::string mode, store, dtype = "f64", phase, state, strategy;
  int rank = 0, size = 1, nodes = 1, per_node = 1;
};

int g_rank = 0;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "rank %d: %s\n", g_rank, what.c_str());
  std::exit(2);
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

template <typename V>
V Take(Result<V> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

// Sizes chosen to exercise padding (none divisible by every world size), a 1-element layer and
// layers smaller than the world. Partial training trains ~1/16 of the parameters (layer 1),
// PEFT ~3/1000 (layer 2), as in the paper's two settings.
const std::vector<size_t> kSizes = {1024, 300, 15, 2049, 513, 1, 767, 7};

std::vector<LayerShape> Shapes(const std::string& training) {
  std::vector<LayerShape> shapes;
  for (size_t l = 0; l < kSizes.size(); ++l) {
    bool trainable =
        training == "full" || (training == "partial" && l == 1) || (training == "peft" && l == 2);
    shapes.push_back({kSizes[l], trainable});
  }
  return shapes;
}

// AdamW for full training, Adam with L2 for partial, SGD with momentum for PEFT: every optimizer
// and both moment counts go through the sharded update.
// Gradient clipping: full training clips (the global norm is ~140 at these sizes), PEFT computes
// the norm without clipping, partial training does neither.
double MaxNormFor(const std::string& training) {
  return training == "full" ? 10.0 : training == "peft" ? 1e6 : 0.0;
}

OptimizerSpec OptimizerFor(const std::string& training) {
  OptimizerSpec o;
  if (training == "full") o.kind = OptimizerKind::kAdamW, o.lr = 0.01, o.weight_decay = 0.1;
  if (training == "partial") o.kind = OptimizerKind::kAdam, o.lr = 0.02, o.weight_decay = 0.01;
  if (training == "peft") o.kind = OptimizerKind::kSgd, o.lr = 0.05, o.momentum = 0.9;
  return o;
}

template <typename T>
T Initial(size_t l, size_t j) {
  return static_cast<T>(0.5 * std::sin(0.37 * static_cast<double>(j) + static_cast<double>(l)));
}

// Rank r's gradient of element j in micro-step a of step s: depends on the current parameter
// (so a wrong gather shows) and on rank, micro-step and step (so a wrong reduction shows); kept
// away from zero so that Adam's m/√v is well conditioned and the comparison is tight.
template <typename T>
T Gradient(size_t l, size_t j, T w, int r, int a, int s) {
  return static_cast<T>(
      1.5 + std::sin(3.0 * static_cast<double>(w) + 0.1 * static_cast<double>(l)) +
      0.25 * static_cast<double>((r * 7 + a * 3 + s * 5 + static_cast<int>(j)) % 11) / 11.0);
}

constexpr int kMicroSteps = 2;

// The reference: full buffers, every rank's micro-step gradients summed, averaged, one update.
template <typename T>
struct Reference {
  std::vector<std::vector<T>> w;
  std::vector<std::unique_ptr<FlatOptimizer<T>>> opt;
  std::vector<LayerShape> shapes;
  int world = 1, step = 0;

  Reference(const std::vector<LayerShape>& s, const OptimizerSpec& o, int world_size)
      : shapes(s), world(world_size) {
    for (size_t l = 0; l < s.size(); ++l) {
      std::vector<T> layer(s[l].size);
      for (size_t j = 0; j < layer.size(); ++j) layer[j] = Initial<T>(l, j);
      w.push_back(std::move(layer));
      opt.push_back(s[l].trainable ? std::make_unique<FlatOptimizer<T>>(o, s[l].size) : nullptr);
    }
  }
  // Returns the global gradient norm when clipping (max_norm > 0), else 0.
  double Step(double lr, double max_norm) {
    std::vector<std::vector<T>> grads(w.size());
    double sum_of_squares = 0;
    for (size_t l = 0; l < w.size(); ++l) {
      if (!shapes[l].trainable) continue;
      std::vector<T>& g = grads[l];
      g.assign(w[l].size(), T(0));
      for (int r = 0; r < world; ++r) {
        for (int a = 0; a < kMicroSteps; ++a) {
          for (size_t j = 0; j < g.size(); ++j) g[j] += Gradient<T>(l, j, w[l][j], r, a, step);
        }
      }
      for (T& x : g) {
        x /= static_cast<T>(world * kMicroSteps);
        sum_of_squares += static_cast<double>(x) * static_cast<double>(x);
      }
    }
    const double norm = max_norm > 0 ? std::sqrt(sum_of_squares) : 0;
    const double coef = max_norm > 0 ? max_norm / (norm + 1e-6) : 1;
    for (size_t l = 0; l < w.size(); ++l) {
      if (!shapes[l].trainable) continue;
      if (coef < 1) {
        for (T& x : grads[l]) x *= static_cast<T>(coef);
      }
      opt[l]->Update(w[l].data(), grads[l].data(), 0, grads[l].size(), lr);
      opt[l]->EndStep();
    }
    ++step;
    return norm;
  }
};

// One optimizer step of the layer-by-layer loop the engine is built for.
template <typename T>
double TrainStep(ShardedEngine<T>& e, int rank, int step, double lr, double max_norm = 0) {
  for (int a = 0; a < kMicroSteps; ++a) {
    for (size_t l = 0; l < e.num_layers(); ++l) {  // forward
      Take(e.GatherLayer(l), "gather (forward)");
      e.ReleaseLayer(l);
    }
    for (size_t l = e.num_layers(); l-- > 0;) {  // backward, last layer first
      const T* w = Take(e.GatherLayer(l), "gather (backward)");
      if (e.layer(l).trainable) {
        std::vector<T> g(e.layer(l).size);
        for (size_t j = 0; j < g.size(); ++j) g[j] = Gradient<T>(l, j, w[j], rank, a, step);
        Check(e.AccumulateGradient(l, g.data()), "accumulate");
      }
      e.ReleaseLayer(l);
    }
  }
  return Take(e.Step(lr, kMicroSteps, max_norm), "step");
}

template <typename T>
void SetInitial(ShardedEngine<T>& e) {
  for (size_t l = 0; l < e.num_layers(); ++l) {
    std::vector<T> w(e.layer(l).size);
    for (size_t j = 0; j < w.size(); ++j) w[j] = Initial<T>(l, j);
    e.SetParameters(l, w.data());
  }
}

// The largest |a − b| / max(1, |b|) over every layer's parameters.
template <typename T>
double Compare(ShardedEngine<T>& e, const Reference<T>& ref) {
  double worst = 0;
  for (size_t l = 0; l < e.num_layers(); ++l) {
    FullLayerState<T> state = Take(e.ReadLayer(l), "read layer");
    for (size_t j = 0; j < state.params.size(); ++j) {
      const double b = static_cast<double>(ref.w[l][j]);
      worst = std::max(
          worst, std::abs(static_cast<double>(state.params[j]) - b) / std::max(1.0, std::abs(b)));
    }
  }
  return worst;
}

constexpr int kSteps = 3;

template <typename T>
int Equivalence(ShardGroups& flat, ShardGroups& hier, double tolerance) {
  int failures = 0;
  for (const char* training : {"full", "partial", "peft"}) {
    const auto shapes = Shapes(training);
    const OptimizerSpec o = OptimizerFor(training);
    const double max_norm = MaxNormFor(training);
    Reference<T> ref(shapes, o, flat.grid().world());
    std::vector<double> ref_norms;
    for (int s = 0; s < kSteps; ++s) ref_norms.push_back(ref.Step(o.lr, max_norm));
    for (Strategy strategy : SupportedStrategies()) {
      for (ShardGroups* groups : {&flat, &hier}) {
        auto e = Take(ShardedEngine<T>::Create(*groups, strategy, shapes, o), "create");
        SetInitial(*e);
        double err = 0;
        for (int s = 0; s < kSteps; ++s) {
          const double norm = TrainStep(*e, g_rank, s, o.lr, max_norm);
          err = std::max(err, std::abs(norm - ref_norms[static_cast<size_t>(s)]) /
                                  std::max(1.0, ref_norms[static_cast<size_t>(s)]));
        }
        err = std::max(err, Compare(*e, ref));
        const bool ok = err <= tolerance;
        if (!ok) ++failures;
        if (!ok || g_rank == 0) {
          std::fprintf(stderr, "rank %d %s %s %s: max relative difference %.3g%s\n", g_rank,
                       StrategyName(strategy).c_str(), training,
                       groups == &flat ? "flat" : "hierarchical", err, ok ? "" : "  FAIL");
        }
      }
    }
  }
  return failures;
}

// The full state file: per layer, its parameters then its optimizer moments, raw doubles, and
// the optimizer's step count first.
void Save(const std::string& path, int64_t steps, const std::vector<FullLayerState<double>>& s) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&steps), sizeof steps);
  for (const auto& layer : s) {
    out.write(reinterpret_cast<const char*>(layer.params.data()),
              static_cast<std::streamsize>(layer.params.size() * sizeof(double)));
    for (const auto& m : layer.moments) {
      out.write(reinterpret_cast<const char*>(m.data()),
                static_cast<std::streamsize>(m.size() * sizeof(double)));
    }
  }
  if (!out) Fail("cannot write " + path);
}

int Reshard(const Args& args, ShardGroups& groups, int saved_world) {
  const auto shapes = Shapes("full");
  const OptimizerSpec o = OptimizerFor("full");
  const Strategy strategy = Take(ParseStrategy(args.strategy), "strategy");
  auto e = Take(ShardedEngine<double>::Create(groups, strategy, shapes, o), "create");
  if (args.phase == "save") {
    SetInitial(*e);
    for (int s = 0; s < kSteps; ++s) TrainStep(*e, g_rank, s, o.lr);
    std::vector<FullLayerState<double>> state;
    for (size_t l = 0; l < e->num_layers(); ++l) state.push_back(Take(e->ReadLayer(l), "read"));
    if (g_rank == 0) Save(args.state, e->optimizer_steps(), state);
    return 0;
  }
  std::ifstream in(args.state, std::ios::binary);
  int64_t steps = 0;
  in.read(reinterpret_cast<char*>(&steps), sizeof steps);
  for (size_t l = 0; l < shapes.size(); ++l) {
    FullLayerState<double> layer;
    layer.params.resize(shapes[l].size);
    in.read(reinterpret_cast<char*>(layer.params.data()),
            static_cast<std::streamsize>(layer.params.size() * sizeof(double)));
    layer.moments.assign(2, std::vector<double>(shapes[l].size));  // adamw: m, v
    for (auto& m : layer.moments) {
      in.read(reinterpret_cast<char*>(m.data()),
              static_cast<std::streamsize>(m.size() * sizeof(double)));
    }
    if (!in) Fail("cannot read " + args.state);
    Check(e->LoadLayer(l, layer, steps), "load");
  }
  if (steps != kSteps) Fail("the saved state has " + std::to_string(steps) + " optimizer steps");
  for (int s = kSteps; s < 2 * kSteps; ++s) TrainStep(*e, g_rank, s, o.lr);
  // The reference: K steps summing the saving grid's ranks, then K summing this grid's.
  Reference<double> ref(shapes, o, saved_world);
  for (int s = 0; s < kSteps; ++s) ref.Step(o.lr, 0);
  ref.world = groups.grid().world();
  for (int s = kSteps; s < 2 * kSteps; ++s) ref.Step(o.lr, 0);
  const double err = Compare(*e, ref);
  std::fprintf(stderr, "rank %d resumed under %s: max relative difference %.3g\n", g_rank,
               args.strategy.c_str(), err);
  return err <= 1e-12 ? 0 : 1;
}

// kind: train's sharded step (sharded_step.h) against a local reference: unequal rows per rank,
// a restore into a fresh step (zero moments, as a new job), 3 steps under NIG on the node-major
// grid, the exported whole state (parameters and Adam's moments) equal to the reference's, then
// that state restored into NNG on another world group whose members all sit on different nodes
// (grid n x 1: other slices), 3 more steps, equal to 6 reference steps.
int Step(const Args& args) {
  const size_t n = 1001;
  const int world_size = args.size;
  OptimizerSpec adam;
  adam.lr = 0.01;
  auto rows_of = [](int r) { return static_cast<int64_t>(r + 1); };
  int64_t total_rows = 0;
  for (int r = 0; r < world_size; ++r) total_rows += rows_of(r);
  // The reference.
  std::vector<double> w(n);
  for (size_t j = 0; j < n; ++j) w[j] = Initial<double>(0, j);
  FlatOptimizer<double> ref(adam, n);
  auto reference_step = [&](int s) {
    std::vector<double> g(n, 0.0);
    for (int r = 0; r < world_size; ++r) {
      for (size_t j = 0; j < n; ++j) {
        g[j] += static_cast<double>(rows_of(r)) * Gradient<double>(0, j, w[j], r, 0, s);
      }
    }
    for (double& x : g) x /= static_cast<double>(total_rows);
    ref.Update(w.data(), g.data(), 0, n, adam.lr);
    ref.EndStep();
  };
  auto generation = [&](bool one_rank_per_node) {
    sdk::Generation gen;
    gen.id = 1;
    gen.rank = g_rank;
    for (int r = 0; r < world_size; ++r) {
      gen.members.push_back({"w" + std::to_string(r), one_rank_per_node ? r : r / args.per_node,
                             one_rank_per_node ? 0 : r % args.per_node});
    }
    return gen;
  };
  auto train = [&](ShardedStep<double>& step, std::vector<double>& params, int from, int to) {
    for (int s = from; s < to; ++s) {
      std::vector<double> grad(n);
      for (size_t j = 0; j < n; ++j) {
        grad[j] =
            static_cast<double>(rows_of(g_rank)) * Gradient<double>(0, j, params[j], g_rank, 0, s);
      }
      Take(step.Apply(params.data(), grad.data(), total_rows, adam.lr, 0), "apply");
      reference_step(s);
    }
  };
  auto worst = [](const double* a, const std::vector<double>& b) {
    double e = 0;
    for (size_t j = 0; j < b.size(); ++j) {
      e = std::max(e, std::abs(a[j] - b[j]) / std::max(1.0, std::abs(b[j])));
    }
    return e;
  };
  std::shared_ptr<comm::Store> store = Take(comm::FileStore::Open(args.store), "store");
  auto world_a = Take(
      comm::ProcessGroup::Create(store, {.prefix = "step-a", .rank = g_rank, .size = world_size}),
      "world a");
  const Strategy nig = Take(ParseStrategy("NIG"), "nig");
  auto a = Take(ShardedStep<double>::Create(*world_a, generation(false), nig,
                                            AllReduceMode::kHierarchical, n, adam),
                "create NIG");
  if (a->grid().nodes != args.nodes || a->grid().per_node != args.per_node) Fail("grid of NIG");
  std::vector<double> params(n);
  for (size_t j = 0; j < n; ++j) params[j] = Initial<double>(0, j);
  a->BuffersForRestore(params.data());  // a new job: zero moments
  Check(a->LoadRestored(params.data(), 0), "load fresh");
  train(*a, params, 0, kSteps);
  TrainingBuffers whole = Take(a->ExportForSnapshot(params.data()), "export");
  double err = worst(static_cast<double*>(whole.params), w);
  auto moments = ref.StateBuffers();
  if (whole.optimizer_state.size() != moments.size()) Fail("moment count");
  std::vector<std::vector<double>> saved;
  for (size_t k = 0; k < moments.size(); ++k) {
    const double* m = static_cast<const double*>(whole.optimizer_state[k]);
    err = std::max(err, worst(m, *moments[k]));
    saved.emplace_back(m, m + n);
  }
  a->ReleaseStaging();
  a.reset();
  auto world_b = Take(
      comm::ProcessGroup::Create(store, {.prefix = "step-b", .rank = g_rank, .size = world_size}),
      "world b");
  auto b = Take(
      ShardedStep<double>::Create(*world_b, generation(true), Take(ParseStrategy("NNG"), "nng"),
                                  AllReduceMode::kAuto, n, adam),
      "create NNG");
  if (b->grid().nodes != world_size || b->grid().per_node != 1) Fail("grid of NNG");
  TrainingBuffers into = b->BuffersForRestore(params.data());
  for (size_t k = 0; k < saved.size(); ++k) {
    std::copy(saved[k].begin(), saved[k].end(), static_cast<double*>(into.optimizer_state[k]));
  }
  Check(b->LoadRestored(params.data(), kSteps), "load saved");
  train(*b, params, kSteps, 2 * kSteps);
  err = std::max(err, worst(params.data(), w));
  std::fprintf(stderr, "rank %d sharded step: max relative difference %.3g\n", g_rank, err);
  return err <= 1e-12 ? 0 : 1;
}

size_t HeapInUse() {
  const struct mallinfo2 mi = ::mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

int Memory(ShardGroups& groups) {
  // 8 layers of 64 Ki doubles (4 MiB of parameters): large enough that allocator overhead and
  // padding stay far below the 10 % margin.
  const std::vector<LayerShape> shapes(8, LayerShape{size_t{1} << 16, true});
  const double psi = 8.0 * (1 << 16);
  OptimizerSpec o;  // adam: two moments
  // A first round of every strategy lets the groups' communication buffers (ring scratch, which
  // persists and would otherwise be charged to whichever strategy first uses a group) reach their
  // size; the second round measures.
  for (Strategy strategy : SupportedStrategies()) {
    auto e = Take(ShardedEngine<double>::Create(groups, strategy, shapes, o), "create");
    SetInitial(*e);
    TrainStep(*e, g_rank, 0, o.lr);
  }
  int failures = 0;
  for (Strategy strategy : SupportedStrategies()) {
    const size_t before = HeapInUse();
    auto e = Take(ShardedEngine<double>::Create(groups, strategy, shapes, o), "create");
    SetInitial(*e);
    TrainStep(*e, g_rank, 0, o.lr);
    const double measured = static_cast<double>(HeapInUse()) - static_cast<double>(before);
    const double predicted =
        ModelStateBytes(strategy, groups.grid(), psi, psi, {.param = 8, .grad = 8, .optimizer = 16})
            .total();
    // The engine's own count must match the formula exactly (no layer here needs padding on a
    // 2x2 grid); the heap, measured independently, within 5 % (the issue asks 10 %).
    const bool ok =
        std::abs(measured / predicted - 1.0) <= 0.05 && e->HeldBytes().total() == predicted;
    if (!ok) ++failures;
    if (!ok || g_rank == 0) {
      std::fprintf(stderr,
                   "rank %d %s: model state %.0f bytes measured, %.0f predicted (%.3f); engine "
                   "holds %.0f; peak transient %zu%s\n",
                   g_rank, StrategyName(strategy).c_str(), measured, predicted,
                   measured / predicted, e->HeldBytes().total(), e->peak_transient_bytes(),
                   ok ? "" : "  FAIL");
    }
  }
  return failures;
}

}  // namespace
}  // namespace baton::train::paro

int main(int argc, char** argv) {
  using namespace baton;
  using namespace baton::train::paro;
  Args a;
  int saved_world = 0;
  std::string intra_flag = "ring";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--mode")
      a.mode = v;
    else if (k == "--store")
      a.store = v;
    else if (k == "--dtype")
      a.dtype = v;
    else if (k == "--phase")
      a.phase = v;
    else if (k == "--state")
      a.state = v;
    else if (k == "--strategy")
      a.strategy = v;
    else if (k == "--intra")
      intra_flag = v;
    else if (k == "--saved-world")
      saved_world = std::atoi(v.c_str());
    else if (k == "--rank")
      a.rank = std::atoi(v.c_str());
    else if (k == "--size")
      a.size = std::atoi(v.c_str());
    else if (k == "--nodes")
      a.nodes = std::atoi(v.c_str());
    else if (k == "--per-node")
      a.per_node = std::atoi(v.c_str());
    else
      Fail("unknown flag " + k);
  }
  g_rank = a.rank;
  std::shared_ptr<comm::Store> store = Take(comm::FileStore::Open(a.store), "open the store");
  auto world =
      Take(comm::ProcessGroup::Create(
               store, {.prefix = "paro/" + a.mode + a.phase, .rank = a.rank, .size = a.size}),
           "form the world group");
  const Grid grid{a.nodes, a.per_node};
  // The intra-node phases over the ring (or --intra direct) here, over shared memory (the
  // default) in `hier`.
  const comm::IntraNode intra =
      intra_flag == "direct" ? comm::IntraNode::kDirect : comm::IntraNode::kRing;
  auto flat =
      Take(ShardGroups::Create(*world, grid, {.name = "flat", .intra_node = intra}), "flat groups");
  if (a.mode == "equivalence") {
    // Threshold 0: every world collective takes the hierarchical path (where the grid has one).
    auto hier =
        Take(ShardGroups::Create(*world, grid, {.name = "hier", .hierarchical_threshold_bytes = 0}),
             "hierarchical groups");
    // fp64: only summation order differs. fp32: documented in docs/train.md.
    const int failures = a.dtype == "f32" ? Equivalence<float>(*flat, *hier, 2e-5)
                                          : Equivalence<double>(*flat, *hier, 1e-12);
    return failures == 0 ? 0 : 1;
  }
  if (a.mode == "reshard") return Reshard(a, *flat, saved_world);
  if (a.mode == "step") return Step(a);
  if (a.mode == "memory") return Memory(*flat) == 0 ? 0 : 1;
  Fail("unknown mode " + a.mode);
}
