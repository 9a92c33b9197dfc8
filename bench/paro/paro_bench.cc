// paro_bench: one rank of the PaRO-DP benchmark (bench/paro/run.sh starts n = nodes × per_node of
// them, each node's ranks inside one tools/netem/netem.sh namespace). Every rank trains the same
// GPT-style decoder (libtorch C++ modules, fp32) under every sharding strategy in turn, side by
// side in one run, and rank 0 prints per strategy the measured throughput and model-state memory
// next to the cost model's prediction (from link speeds and compute time measured here), then the
// goal figures:
//
//   paro_best_vs_zero3, paro_best_vs_zero2   the best new PaRO triple (NIG NII IIG IGG ING) over
//                                            GGG (ZeRO-3) and NGG (ZeRO-2), measured samples/s
//   chooser_regret                           measured step time of the cost model's pick over the
//                                            measured best
//   tps_rank_corr                            Spearman correlation of predicted and measured
//                                            throughput over the ten strategies
//
// for full training (keys as above), partial training (the LM head and final norm: `_partial`)
// and parameter-efficient training (the layer norms only, BitFit-style: `_peft`).
//
// The training loop is the engine's (sharded_engine.h): each block's parameters are gathered
// before its forward and again before its backward, which recomputes the block's forward from its
// saved input (activation checkpointing, as the paper's recipe uses), so the block's weights need
// to exist only while it runs. Parameters are bound to the gathered buffer without copying.
//
// Usage: paro_bench --rank R --size N --nodes G --per-node M --store DIR --addr IP
//                   [--layers 8] [--dim 256] [--heads 4] [--vocab 2048] [--seq 64] [--batch 1]
//                   [--micro-steps 2] [--steps 2] [--warmup 1] [--modes full,partial,peft]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "comm/file_store.h"
#include "comm/process_group.h"
#include "train/flat_optimizer.h"
#include "train/paro/cost_model.h"
#include "train/paro/shard_groups.h"
#include "train/paro/sharded_engine.h"
#include "train/paro/strategy.h"

namespace baton::train::paro {
namespace {

struct Flags {
  int rank = 0, size = 1, nodes = 1, per_node = 1;
  std::string store, addr = "127.0.0.1", modes = "full,partial,peft";
  int64_t layers = 8, dim = 256, heads = 4, vocab = 2048, seq = 64, batch = 1;
  int micro_steps = 2, steps = 2, warmup = 1;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "paro_bench: %s\n", what.c_str());
  std::exit(1);
}
void Check(const Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}
template <typename V>
V Take(Result<V> r, const char* what) {
  if (!r.ok()) Die(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- the model --------------------------------------------------------------------------------

struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t d, int64_t h) : heads(h) {
    ln1 = register_module("ln1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    ln2 = register_module("ln2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
    qkv = register_module("qkv", torch::nn::Linear(d, 3 * d));
    proj = register_module("proj", torch::nn::Linear(d, d));
    fc1 = register_module("fc1", torch::nn::Linear(d, 4 * d));
    fc2 = register_module("fc2", torch::nn::Linear(4 * d, d));
  }
  torch::Tensor forward(torch::Tensor x) {
    const int64_t b = x.size(0), t = x.size(1), d = x.size(2);
    auto parts = qkv(ln1(x)).view({b, t, 3, heads, d / heads}).permute({2, 0, 3, 1, 4});
    auto att = torch::matmul(parts[0], parts[1].transpose(-2, -1)) /
               std::sqrt(static_cast<double>(d / heads));
    auto causal = torch::ones({t, t}, torch::kBool).triu(1);
    att = att.masked_fill(causal, -std::numeric_limits<float>::infinity()).softmax(-1);
    auto y = torch::matmul(att, parts[2]).transpose(1, 2).reshape({b, t, d});
    x = x + proj(y);
    return x + fc2(torch::gelu(fc1(ln2(x))));
  }
  int64_t heads;
  torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
  torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(Block);

// One engine layer: the torch parameters gathered and trained together, with their shapes (the
// tensors themselves are emptied between uses).
struct EngineLayer {
  std::string name;
  std::vector<torch::Tensor> params;
  std::vector<std::vector<int64_t>> shapes;
  size_t size = 0;
  bool trainable = true;
};

struct Gpt {
  torch::nn::Embedding tok{nullptr};
  torch::Tensor pos;
  std::vector<Block> blocks;
  torch::nn::LayerNorm lnf{nullptr};
  torch::nn::Linear head{nullptr};
  // embed, (block weights, block norms) per block, final norm, head.
  std::vector<EngineLayer> layers;

  size_t Embed() const { return 0; }
  size_t Weights(size_t b) const { return 1 + 2 * b; }
  size_t Norms(size_t b) const { return 2 + 2 * b; }
  size_t FinalNorm() const { return 1 + 2 * blocks.size(); }
  size_t Head() const { return 2 + 2 * blocks.size(); }
  // Whether a backward reaching layer `l` has anything to train at or below it.
  bool TrainableAtOrBelow(size_t l) const {
    for (size_t k = 0; k <= l; ++k) {
      if (layers[k].trainable) return true;
    }
    return false;
  }
};

EngineLayer Group(std::string name, std::vector<torch::Tensor> params) {
  EngineLayer l{.name = std::move(name),
                .params = std::move(params),
                .shapes = {},
                .size = 0,
                .trainable = true};
  for (auto& p : l.params) {
    l.shapes.push_back(p.sizes().vec());
    l.size += static_cast<size_t>(p.numel());
  }
  return l;
}

Gpt MakeGpt(const Flags& f) {
  torch::manual_seed(0);  // the same initial weights on every rank
  Gpt m;
  m.tok = torch::nn::Embedding(f.vocab, f.dim);
  m.pos = (torch::randn({f.seq, f.dim}) * 0.02).requires_grad_(true);
  m.layers.push_back(Group("embed", {m.tok->weight, m.pos}));
  for (int64_t b = 0; b < f.layers; ++b) {
    Block block(f.dim, f.heads);
    m.layers.push_back(
        Group("block" + std::to_string(b),
              {block->qkv->weight, block->qkv->bias, block->proj->weight, block->proj->bias,
               block->fc1->weight, block->fc1->bias, block->fc2->weight, block->fc2->bias}));
    m.layers.push_back(Group("norms" + std::to_string(b), {block->ln1->weight, block->ln1->bias,
                                                           block->ln2->weight, block->ln2->bias}));
    m.blocks.push_back(block);
  }
  m.lnf = torch::nn::LayerNorm(torch::nn::LayerNormOptions({f.dim}));
  m.head = torch::nn::Linear(torch::nn::LinearOptions(f.dim, f.vocab).bias(false));
  m.layers.push_back(Group("final_norm", {m.lnf->weight, m.lnf->bias}));
  m.layers.push_back(Group("head", {m.head->weight}));
  return m;
}

// full: everything; partial: the head and the final norm (~1/14 of the parameters at the
// defaults, the paper's Ψ/16 setting); peft: every layer norm (BitFit-style, ~1/1000).
void SetTraining(Gpt& m, const std::string& mode) {
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const std::string& name = m.layers[l].name;
    bool on = mode == "full" || (mode == "partial" && (name == "head" || name == "final_norm")) ||
              (mode == "peft" && (name.rfind("norms", 0) == 0 || name == "final_norm"));
    m.layers[l].trainable = on;
    for (auto& p : m.layers[l].params) p.requires_grad_(on);
  }
}

std::vector<float> Flatten(const EngineLayer& l) {
  std::vector<float> out;
  out.reserve(l.size);
  for (const auto& p : l.params) {
    auto c = p.detach().contiguous();
    out.insert(out.end(), c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
  }
  return out;
}

// Points the layer's tensors at `data` (the engine's gathered or stored buffer): no copy.
void Bind(EngineLayer& l, const float* data) {
  size_t off = 0;
  for (size_t k = 0; k < l.params.size(); ++k) {
    auto view = torch::from_blob(const_cast<float*>(data) + off, l.shapes[k], torch::kFloat32);
    l.params[k].set_data(view);
    off += static_cast<size_t>(view.numel());
  }
}
void Unbind(EngineLayer& l) {
  for (auto& p : l.params) p.set_data(torch::empty({0}));
}

// ---- one training step under the engine -------------------------------------------------------

class Trainer {
 public:
  Trainer(Gpt& m, ShardedEngine<float>& e, const Flags& f) : m_(m), e_(e), f_(f) {}

  void Gather(size_t l) { Bind(m_.layers[l], Take(e_.GatherLayer(l), "gather")); }
  void Release(size_t l) {
    Unbind(m_.layers[l]);
    e_.ReleaseLayer(l);
  }
  void Accumulate(size_t l) {
    EngineLayer& layer = m_.layers[l];
    if (!layer.trainable) return;
    grad_.resize(layer.size);
    size_t off = 0;
    for (auto& p : layer.params) {
      auto g = p.grad().contiguous();
      std::copy(g.data_ptr<float>(), g.data_ptr<float>() + g.numel(),
                grad_.begin() + static_cast<long>(off));
      off += static_cast<size_t>(g.numel());
      p.mutable_grad() = torch::Tensor();
    }
    Check(e_.AccumulateGradient(l, grad_.data()), "accumulate");
  }

  // One micro-step: returns the loss.
  double MicroStep(const torch::Tensor& tokens) {
    auto input = tokens.slice(1, 0, f_.seq), target = tokens.slice(1, 1, f_.seq + 1);
    std::vector<torch::Tensor> acts;  // each block's input, kept for its recomputation
    {
      torch::NoGradGuard no_grad;
      Gather(m_.Embed());
      acts.push_back(m_.tok(input) + m_.pos);
      Release(m_.Embed());
      for (size_t b = 0; b < m_.blocks.size(); ++b) {
        Gather(m_.Weights(b));
        Gather(m_.Norms(b));
        acts.push_back(m_.blocks[b](acts.back()));
        Release(m_.Weights(b));
        Release(m_.Norms(b));
      }
    }
    // The head: forward and backward in one gather.
    Gather(m_.FinalNorm());
    Gather(m_.Head());
    auto x = acts.back().detach().requires_grad_(true);
    auto loss = torch::nn::functional::cross_entropy(m_.head(m_.lnf(x)).reshape({-1, f_.vocab}),
                                                     target.reshape({-1}));
    loss.backward();
    const double value = loss.item<double>();
    Accumulate(m_.FinalNorm());
    Accumulate(m_.Head());
    Release(m_.FinalNorm());
    Release(m_.Head());
    torch::Tensor g = x.grad();
    // Blocks, last first: gather again, recompute from the saved input, backward.
    for (size_t b = m_.blocks.size(); b-- > 0;) {
      if (!m_.TrainableAtOrBelow(m_.Norms(b))) break;
      Gather(m_.Weights(b));
      Gather(m_.Norms(b));
      auto in = acts[b].detach().requires_grad_(true);
      m_.blocks[b](in).backward(g);
      Accumulate(m_.Weights(b));
      Accumulate(m_.Norms(b));
      g = in.grad();
      Release(m_.Weights(b));
      Release(m_.Norms(b));
    }
    if (m_.layers[m_.Embed()].trainable) {
      Gather(m_.Embed());
      (m_.tok(input) + m_.pos).backward(g);
      Accumulate(m_.Embed());
      Release(m_.Embed());
    }
    return value;
  }

 private:
  Gpt& m_;
  ShardedEngine<float>& e_;
  const Flags& f_;
  std::vector<float> grad_;
};

// How often Trainer::MicroStep gathers each engine layer: the final norm and the head once
// (forward and backward in one gather), the rest twice, or once when nothing at or below them
// trains (no backward reaches them).
std::vector<int> GathersPerMicroStep(const Gpt& m) {
  std::vector<int> out(m.layers.size(), 1);
  for (size_t b = 0; b < m.blocks.size(); ++b) {
    const int n = m.TrainableAtOrBelow(m.Norms(b)) ? 2 : 1;
    out[m.Weights(b)] = out[m.Norms(b)] = n;
  }
  out[m.Embed()] = m.layers[m.Embed()].trainable ? 2 : 1;
  return out;
}

// Synthetic tokens, different per rank, micro-step and step, the same for every strategy.
torch::Tensor Tokens(const Flags& f, int step, int micro) {
  std::mt19937_64 rng(static_cast<uint64_t>(f.rank * 1000003 + step * 101 + micro));
  std::uniform_int_distribution<int64_t> pick(0, f.vocab - 1);
  auto t = torch::empty({f.batch, f.seq + 1}, torch::kInt64);
  auto* p = t.data_ptr<int64_t>();
  for (int64_t k = 0; k < t.numel(); ++k) p[k] = pick(rng);
  return t;
}

// ---- measurements -----------------------------------------------------------------------------

double MaxOverRanks(comm::ProcessGroup& world, double v) {
  Check(world.AllReduce(&v, 1, comm::DataType::kFloat64, comm::ReduceOp::kMax), "max");
  return v;
}

// Median time of `reps` calls of `op`, the slowest rank's.
template <typename Op>
double TimeIt(comm::ProcessGroup& world, int reps, Op op) {
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    Check(world.Barrier(), "barrier");
    const double t0 = Now();
    Check(op(), "timed collective");
    t.push_back(MaxOverRanks(world, Now() - t0));
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The part of a large message's time spent on bytes: its time less the latency a one-chunk
// message measured, but at least a tenth of it (on a fast link the two are within noise).
double BandwidthTime(double large_s, double latency_s) {
  return std::max(large_s - latency_s, 0.1 * large_s);
}

// B', B, α', α from all-gathers on INTRA and INTER: a one-chunk message for the latency, the
// largest layer (the bucket the engine moves) for the bandwidth.
LinkSpeeds MeasureLinks(ShardGroups& groups, size_t bucket_elems) {
  const Grid grid = groups.grid();
  const double m = grid.per_node, g = grid.nodes;
  auto world = [&]() -> comm::ProcessGroup& { return groups.world(); };
  const ShardLayout tiny = groups.LayoutOf(static_cast<size_t>(grid.world()));
  const ShardLayout big = groups.LayoutOf(bucket_elems);
  std::vector<float> buf(big.padded());
  LinkSpeeds s;
  if (m > 1) {
    const double lat = TimeIt(world(), 21, [&] {
      return groups.IntraAllGather(buf.data(), tiny, comm::DataType::kFloat32);
    });
    const double t = TimeIt(world(), 15, [&] {
      return groups.IntraAllGather(buf.data(), big, comm::DataType::kFloat32);
    });
    s.intra_latency_s = lat / (m - 1);
    s.intra_bytes_per_s =
        (m - 1) / m * static_cast<double>(big.padded() * 4) / BandwidthTime(t, lat);
  }
  if (g > 1) {
    const double lat = TimeIt(world(), 21, [&] {
      return groups.InterAllGather(buf.data(), tiny, comm::DataType::kFloat32);
    });
    const double t = TimeIt(world(), 15, [&] {
      return groups.InterAllGather(buf.data(), big, comm::DataType::kFloat32);
    });
    s.inter_latency_s = lat / (g - 1);
    s.inter_bytes_per_s =
        (g - 1) / g * static_cast<double>(big.intra_size() * 4) / BandwidthTime(t, lat);
  }
  // A one-node or one-rank-per-node grid has no link of the other kind: any positive figure.
  if (s.intra_bytes_per_s <= 0)
    s.intra_bytes_per_s = s.inter_bytes_per_s > 0 ? s.inter_bytes_per_s : 1e9;
  if (s.inter_bytes_per_s <= 0) s.inter_bytes_per_s = s.intra_bytes_per_s;
  return s;
}

// Seconds per element of an Adam update, every rank updating at once (as they do in a step,
// sharing the cores): the cost model's update term.
double MeasureUpdate(comm::ProcessGroup& world) {
  constexpr size_t kElements = size_t{1} << 20;
  std::vector<float> params(kElements, 0.5f), grads(kElements, 0.01f);
  FlatOptimizer<float> adam(OptimizerSpec{}, kElements);
  const double t = TimeIt(world, 5, [&] {
    adam.Update(params.data(), grads.data(), 0, kElements, 1e-3);
    adam.EndStep();
    return Status::Ok();
  });
  return t / static_cast<double>(kElements);
}

std::vector<double> Ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t k = i; k <= j; ++k) r[idx[k]] = (static_cast<double>(i + j)) / 2.0;
    i = j + 1;
  }
  return r;
}

double Spearman(const std::vector<double>& a, const std::vector<double>& b) {
  const auto ra = Ranks(a), rb = Ranks(b);
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n;
  const double mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double num = 0, da = 0, db = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    num += (ra[i] - ma) * (rb[i] - mb);
    da += (ra[i] - ma) * (ra[i] - ma);
    db += (rb[i] - mb) * (rb[i] - mb);
  }
  return num / std::sqrt(da * db);
}

struct Measured {
  Strategy strategy;
  double step_s = 0, samples_per_s = 0, state_bytes = 0, loss = 0;
  size_t peak_transient = 0;
};

void RunMode(const Flags& f, const std::string& mode, ShardGroups& groups, const LinkSpeeds& links,
             double update_s_per_param) {
  Gpt model = MakeGpt(f);
  SetTraining(model, mode);
  std::vector<LayerShape> shapes;
  std::vector<std::vector<float>> initial;
  for (const EngineLayer& l : model.layers) {
    shapes.push_back({l.size, l.trainable});
    initial.push_back(Flatten(l));
  }
  for (EngineLayer& l : model.layers) Unbind(l);
  OptimizerSpec adam;
  adam.lr = 1e-3;
  const double samples_per_step = static_cast<double>(f.size) * f.micro_steps * f.batch;
  const std::string suffix = mode == "full" ? "" : "_" + mode;
  std::vector<Measured> results;
  double compute_s = 0;
  for (Strategy s : SupportedStrategies()) {
    auto engine = Take(ShardedEngine<float>::Create(groups, s, shapes, adam), "engine");
    for (size_t l = 0; l < shapes.size(); ++l) engine->SetParameters(l, initial[l].data());
    Trainer trainer(model, *engine, f);
    Measured r{.strategy = s};
    double micro_time = 0;
    for (int step = 0; step < f.warmup + f.steps; ++step) {
      Check(groups.world().Barrier(), "barrier");
      const double t0 = Now();
      for (int a = 0; a < f.micro_steps; ++a) r.loss = trainer.MicroStep(Tokens(f, step, a));
      const double t1 = Now();
      Take(engine->Step(adam.lr, f.micro_steps), "step");
      const double dt = MaxOverRanks(groups.world(), Now() - t0);
      if (step >= f.warmup) {
        r.step_s += dt / f.steps;
        micro_time += MaxOverRanks(groups.world(), t1 - t0) / f.steps / f.micro_steps;
      }
    }
    // NNN communicates only at the boundary: its micro-steps are the compute time every strategy
    // pays (the model's t_compute).
    if (StrategyName(s) == "NNN") compute_s = micro_time;
    r.samples_per_s = samples_per_step / r.step_s;
    r.state_bytes = engine->HeldBytes().total();
    r.peak_transient = engine->peak_transient_bytes();
    results.push_back(r);
  }
  CostInputs in;
  in.grid = groups.grid();
  in.layers = shapes;
  in.bytes = {.param = 4, .grad = 4, .optimizer = 8};
  in.micro_steps = f.micro_steps;
  in.gathers_per_micro_step = GathersPerMicroStep(model);
  in.compute_s = compute_s;
  in.links = links;
  in.update_s_per_param = update_s_per_param;
  const std::vector<Prediction> predicted = PredictAll(in);
  const Prediction pick = Take(Choose(in), "choose");
  if (f.rank != 0) return;

  double trainable = 0, total = 0;
  for (const LayerShape& l : shapes) total += l.size, trainable += l.trainable ? l.size : 0;
  std::printf("paro mode=%s params=%.0f trainable=%.0f trainable_fraction=%.5f compute_s=%.4f\n",
              mode.c_str(), total, trainable, trainable / total, compute_s);
  std::vector<double> measured_tput, predicted_tput;
  double best_s = 1e300, best_new = 0, zero3 = 0, zero2 = 0, pick_s = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const Measured& r = results[i];
    const Prediction& p = predicted[i];
    const std::string name = StrategyName(r.strategy);
    std::printf(
        "paro mode=%s strategy=%s samples_per_s=%.3f step_s=%.4f predicted_step_s=%.4f "
        "predicted_tps=%.4f state_bytes=%.0f predicted_state_bytes=%.0f peak_transient_bytes=%zu "
        "loss=%.5f\n",
        mode.c_str(), name.c_str(), r.samples_per_s, r.step_s, p.step_s, p.tps, r.state_bytes,
        p.state.total(), r.peak_transient, r.loss);
    measured_tput.push_back(r.samples_per_s);
    predicted_tput.push_back(1.0 / p.step_s);
    best_s = std::min(best_s, r.step_s);
    if (name == "NIG" || name == "NII" || name == "IIG" || name == "IGG" || name == "ING") {
      best_new = std::max(best_new, r.samples_per_s);
    }
    if (name == "GGG") zero3 = r.samples_per_s;
    if (name == "NGG") zero2 = r.samples_per_s;
    if (r.strategy == pick.strategy) pick_s = r.step_s;
  }
  std::printf("paro_best_vs_zero3%s=%.3f\n", suffix.c_str(), best_new / zero3);
  std::printf("paro_best_vs_zero2%s=%.3f\n", suffix.c_str(), best_new / zero2);
  std::printf("chooser_pick%s=%s\n", suffix.c_str(), StrategyName(pick.strategy).c_str());
  std::printf("chooser_regret%s=%.3f\n", suffix.c_str(), pick_s / best_s);
  std::printf("tps_rank_corr%s=%.3f\n", suffix.c_str(), Spearman(predicted_tput, measured_tput));
  std::fflush(stdout);
}

int Run(const Flags& f) {
  torch::set_num_threads(1);
  std::shared_ptr<comm::Store> store = Take(comm::FileStore::Open(f.store), "store");
  auto world =
      Take(comm::ProcessGroup::Create(store, {.prefix = "paro-bench",
                                              .rank = f.rank,
                                              .size = f.size,
                                              .address = f.addr,
                                              .timeout = std::chrono::milliseconds(600000)}),
           "world group");
  auto groups = Take(ShardGroups::Create(*world, Grid{f.nodes, f.per_node}), "shard groups");
  Gpt probe = MakeGpt(f);
  size_t bucket = 0;
  for (const EngineLayer& l : probe.layers) bucket = std::max(bucket, l.size);
  const LinkSpeeds links = MeasureLinks(*groups, bucket);
  const double update_s_per_param = MeasureUpdate(*world);
  if (f.rank == 0) {
    std::printf(
        "paro config=%dx%d layers=%lld dim=%lld seq=%lld batch=%lld micro_steps=%d steps=%d "
        "intra_MBps=%.1f inter_MBps=%.1f intra_latency_us=%.1f inter_latency_us=%.1f "
        "adam_ns_per_param=%.2f\n",
        f.nodes, f.per_node, static_cast<long long>(f.layers), static_cast<long long>(f.dim),
        static_cast<long long>(f.seq), static_cast<long long>(f.batch), f.micro_steps, f.steps,
        links.intra_bytes_per_s / 1e6, links.inter_bytes_per_s / 1e6, links.intra_latency_s * 1e6,
        links.inter_latency_s * 1e6, update_s_per_param * 1e9);
    std::fflush(stdout);
  }
  size_t start = 0;
  while (start <= f.modes.size()) {
    size_t end = f.modes.find(',', start);
    if (end == std::string::npos) end = f.modes.size();
    const std::string mode = f.modes.substr(start, end - start);
    if (mode != "full" && mode != "partial" && mode != "peft") Die("unknown mode " + mode);
    RunMode(f, mode, *groups, links, update_s_per_param);
    start = end + 1;
  }
  return 0;
}

}  // namespace
}  // namespace baton::train::paro

int main(int argc, char** argv) {
  baton::train::paro::Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) baton::train::paro::Die("flag " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--rank")
      f.rank = std::stoi(v);
    else if (k == "--size")
      f.size = std::stoi(v);
    else if (k == "--nodes")
      f.nodes = std::stoi(v);
    else if (k == "--per-node")
      f.per_node = std::stoi(v);
    else if (k == "--store")
      f.store = v;
    else if (k == "--addr")
      f.addr = v;
    else if (k == "--modes")
      f.modes = v;
    else if (k == "--layers")
      f.layers = std::stoll(v);
    else if (k == "--dim")
      f.dim = std::stoll(v);
    else if (k == "--heads")
      f.heads = std::stoll(v);
    else if (k == "--vocab")
      f.vocab = std::stoll(v);
    else if (k == "--seq")
      f.seq = std::stoll(v);
    else if (k == "--batch")
      f.batch = std::stoll(v);
    else if (k == "--micro-steps")
      f.micro_steps = std::stoi(v);
    else if (k == "--steps")
      f.steps = std::stoi(v);
    else if (k == "--warmup")
      f.warmup = std::stoi(v);
    else
      baton::train::paro::Die("unknown flag " + k +
                              " (see the header of bench/paro/paro_bench.cc)");
  }
  return baton::train::paro::Run(f);
}
