// meta_test_worker: one rank of a G-Meta multi-process test (meta_multiprocess_test.cc spawns
// `size` of these on loopback). Every rank trains K meta-steps on its share of generated tasks
// with the distributed meta-step, and, alone, the same K steps as a single process over every
// rank's tasks; it exits 0 only if θ_d and every embedding row it owns match the single
// process's, each meta-step looked rows up exactly once, and the lookup fetched each distinct
// id exactly once.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "comm/file_store.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "meta/meta_trainer.h"
#include "meta/sharded_embedding.h"

namespace baton::meta {
namespace {

struct Args {
  std::string path = "batched";  // or per-task: one pass of the model per task
  std::string store, model, dump, order = "first", adapt = "all", sparse_opt = "adagrad";
  int rank = 0, size = 1, nodes = 1, steps = 3, tasks_per_step = 7, inner_steps = 1;
  double tolerance = 1e-12;
};

int g_rank = 0;
constexpr uint64_t kInitSeed = 7;
constexpr double kInitScale = 0.3;
constexpr double kSparseLr = 0.05;

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "rank %d: %s\n", g_rank, what.c_str());
  std::exit(2);
}

template <typename V>
V Take(Result<V> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(r).value();
}

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double Uniform(uint64_t& state) {
  state = Mix(state);
  return static_cast<double>(state >> 11) * 0x1.0p-53;
}

// Task t of meta-step s: 2-6 support and 1-5 query rows; ids from a vocabulary of 40 per field,
// so ids repeat within a task, across tasks and across ranks (what deduplication is for).
Episode MakeTask(int step, int task, int num_dense, int num_sparse) {
  uint64_t state = Mix(static_cast<uint64_t>(step) * 1000003u + static_cast<uint64_t>(task));
  Episode ep;
  ep.task_id = "s" + std::to_string(step) + "t" + std::to_string(task);
  ep.num_support = 2 + static_cast<uint32_t>(Uniform(state) * 5);
  ep.num_query = 1 + static_cast<uint32_t>(Uniform(state) * 5);
  ep.num_dense = static_cast<uint32_t>(num_dense);
  ep.num_sparse = static_cast<uint32_t>(num_sparse);
  for (size_t r = 0; r < ep.rows(); ++r) {
    for (int k = 0; k < num_dense; ++k)
      ep.dense.push_back(static_cast<float>(Uniform(state) * 2 - 1));
    for (int f = 0; f < num_sparse; ++f) {
      const uint64_t value = static_cast<uint64_t>(Uniform(state) * 40);
      ep.sparse.push_back(static_cast<int64_t>(Mix(static_cast<uint64_t>(f) << 32 | value) >> 1));
    }
    ep.labels.push_back(Uniform(state) < 0.4 ? 1.0f : 0.0f);
  }
  return ep;
}

template <typename T>
struct Run {
  std::unique_ptr<MetaModel> model;
  std::unique_ptr<EmbeddingShard<T>> shard;
  std::unique_ptr<MetaTrainer<T>> trainer;
};

template <typename T>
Run<T> MakeRun(const Args& a, const MetaStepOptions& options, comm::Collectives* dense,
               comm::ProcessGroup* sparse, int rank, int world) {
  Run<T> run;
  run.model = Take(LoadMetaModel(a.model), "load the model");
  typename EmbeddingShard<T>::Options so;
  so.dim = run.model->embedding_dim();
  so.rank = rank;
  so.world = world;
  so.seed = kInitSeed;
  so.init_scale = kInitScale;
  so.optimizer.kind =
      Take(ParseSparseOptimizer(a.dump.empty() ? a.sparse_opt : "sgd"), "--sparse-opt");
  so.optimizer.lr = kSparseLr;
  if (so.optimizer.kind == SparseOptimizerKind::kAdam) so.optimizer.eps = 1e-8;
  run.shard = std::make_unique<EmbeddingShard<T>>(so);
  run.trainer =
      std::make_unique<MetaTrainer<T>>(run.model.get(), dense, sparse, run.shard.get(), options);
  return run;
}

bool Close(double got, double want, double tolerance) {
  return std::fabs(got - want) <= tolerance * std::max(1.0, std::fabs(want));
}

// Tasks in meta-step s: step 1 has 2, so that on 4 ranks two of them have none that step (the
// empty lookup and meta-gradient).
int TasksIn(const Args& a, int s) { return s == 1 ? 2 : a.tasks_per_step; }

MetaStepOptions OptionsOf(const Args& a) {
  MetaStepOptions options;
  options.maml.second_order = a.order == "second";
  options.maml.inner_steps = a.inner_steps;
  options.maml.inner_lr = 0.2;
  options.maml.adapt = Take(ParseInnerParams(a.adapt), "--adapt");
  options.maml.batched = a.path != "per-task";
  options.outer.kind = a.dump.empty() ? train::OptimizerKind::kAdam : train::OptimizerKind::kSgd;
  options.outer.lr = a.dump.empty() ? 0.01 : 0.5;
  return options;
}

// --dump: one process, outer and sparse SGD; writes what an independent implementation needs to
// redo the run (maml_reference.py): the options, every step's tasks, the initial rows of every
// id, and the final θ_d and rows.
int Dump(const Args& a) {
  MetaStepOptions options = OptionsOf(a);
  Run<double> solo = MakeRun<double>(a, options, nullptr, nullptr, 0, 1);
  const int nd = solo.model->num_dense(), ns = solo.model->num_sparse();
  const int d = solo.model->embedding_dim();
  nlohmann::json out;
  out["inner_lr"] = options.maml.inner_lr;
  out["inner_steps"] = options.maml.inner_steps;
  out["second_order"] = options.maml.second_order;
  out["adapt"] = a.adapt;
  out["outer_lr"] = options.outer.lr;
  out["sparse_lr"] = kSparseLr;
  std::set<int64_t> ids;
  for (int s = 0; s < a.steps; ++s) {
    std::vector<Episode> all;
    nlohmann::json step = nlohmann::json::array();
    for (int t = 0; t < TasksIn(a, s); ++t) {
      all.push_back(MakeTask(s, t, nd, ns));
      const Episode& ep = all.back();
      step.push_back({{"num_support", ep.num_support},
                      {"dense", ep.dense},
                      {"sparse", ep.sparse},
                      {"labels", ep.labels}});
      ids.insert(ep.sparse.begin(), ep.sparse.end());
    }
    out["steps"].push_back(step);
    Take(solo.trainer->Step(all), "meta-step");
  }
  for (int64_t id : ids) {
    std::vector<double> initial(static_cast<size_t>(d));
    InitialRow(kInitSeed, id, d, kInitScale, initial.data());
    const double* final_row = solo.shard->Find(id);
    out["initial_rows"][std::to_string(id)] = initial;
    out["final_rows"][std::to_string(id)] = std::vector<double>(final_row, final_row + d);
  }
  const double* theta = static_cast<const double*>(solo.model->params());
  out["final_theta"] = std::vector<double>(theta, theta + solo.model->size());
  std::ofstream(a.dump) << out.dump();
  return 0;
}

template <typename T>
int Equivalence(const Args& a, comm::ProcessGroup& world, comm::Collectives& dense) {
  MetaStepOptions options = OptionsOf(a);
  Run<T> dist = MakeRun<T>(a, options, &dense, &world, a.rank, a.size);
  Run<T> solo = MakeRun<T>(a, options, nullptr, nullptr, 0, 1);
  const int nd = dist.model->num_dense(), ns = dist.model->num_sparse();

  std::set<int64_t> owned_seen;
  for (int s = 0; s < a.steps; ++s) {
    std::vector<Episode> all, mine;
    for (int t = 0; t < TasksIn(a, s); ++t) {
      all.push_back(MakeTask(s, t, nd, ns));
      // Tasks dealt unevenly (rank r takes t with (t * 5 + s) % size == r), so ranks hold
      // different numbers of tasks, some none.
      if ((t * 5 + s) % a.size == a.rank) mine.push_back(all.back());
    }
    MetaStepStats got = Take(dist.trainer->Step(mine), "distributed meta-step");
    MetaStepStats want = Take(solo.trainer->Step(all), "single-process meta-step");
    if (got.tasks != TasksIn(a, s)) Fail("the meta-batch counted " + std::to_string(got.tasks));
    if (!Close(got.loss, want.loss, a.tolerance)) {
      Fail("step " + std::to_string(s) + " loss " + std::to_string(got.loss) + " vs " +
           std::to_string(want.loss));
    }
    std::set<int64_t> distinct;
    for (const Episode& ep : mine) distinct.insert(ep.sparse.begin(), ep.sparse.end());
    if (got.rows_fetched != distinct.size()) {
      Fail("fetched " + std::to_string(got.rows_fetched) + " rows for " +
           std::to_string(distinct.size()) + " distinct ids");
    }
    for (const Episode& ep : all) {
      for (int64_t id : ep.sparse) {
        if (OwnerOf(id, a.size) == a.rank) owned_seen.insert(id);
      }
    }
  }
  const ExchangeCounters& c = dist.trainer->exchange_counters();
  if (c.lookups != a.steps || c.pushes != a.steps) {
    Fail(std::to_string(c.lookups) + " lookups and " + std::to_string(c.pushes) + " pushes for " +
         std::to_string(a.steps) + " meta-steps");
  }
  const T* got = static_cast<const T*>(dist.model->params());
  const T* want = static_cast<const T*>(solo.model->params());
  double worst = 0;
  for (size_t k = 0; k < dist.model->size(); ++k) {
    worst = std::max(worst, std::fabs(static_cast<double>(got[k]) - want[k]) /
                                std::max(1.0, std::fabs(static_cast<double>(want[k]))));
  }
  const int d = dist.model->embedding_dim();
  for (int64_t id : owned_seen) {
    const T* g = dist.shard->Find(id);
    const T* w = solo.shard->Find(id);
    if (g == nullptr || w == nullptr) Fail("row " + std::to_string(id) + " missing");
    for (int k = 0; k < d; ++k) {
      worst = std::max(worst, std::fabs(static_cast<double>(g[k]) - w[k]) /
                                  std::max(1.0, std::fabs(static_cast<double>(w[k]))));
    }
  }
  // The parameters must have moved: a run that updates nothing would match trivially.
  Run<T> fresh = MakeRun<T>(a, options, nullptr, nullptr, 0, 1);
  double moved = 0;
  for (size_t k = 0; k < fresh.model->size(); ++k) {
    moved = std::max(moved, std::fabs(static_cast<double>(want[k]) -
                                      static_cast<const T*>(fresh.model->params())[k]));
  }
  std::printf(
      "rank %d: worst relative difference %.3g over %zu dense and %zu owned rows; "
      "moved %.3g\n",
      a.rank, worst, dist.model->size(), owned_seen.size(), moved);
  if (moved < 1e-4) Fail("training did not move the parameters");
  if (worst > a.tolerance) Fail("difference above the tolerance " + std::to_string(a.tolerance));
  return 0;
}

int Main(int argc, char** argv) {
  Args a;
  std::string dtype = "f64";
  std::map<std::string, std::string> flags;
  for (int i = 1; i + 1 < argc; i += 2) flags[argv[i]] = argv[i + 1];
  auto take = [&](const char* name, auto* field) {
    auto it = flags.find(name);
    if (it == flags.end()) return;
    if constexpr (std::is_same_v<decltype(*field), int&>) {
      *field = std::stoi(it->second);
    } else if constexpr (std::is_same_v<decltype(*field), double&>) {
      *field = std::stod(it->second);
    } else {
      *field = it->second;
    }
    flags.erase(it);
  };
  take("--store", &a.store);
  take("--model", &a.model);
  take("--dump", &a.dump);
  take("--order", &a.order);
  take("--path", &a.path);
  take("--adapt", &a.adapt);
  take("--sparse-opt", &a.sparse_opt);
  take("--rank", &a.rank);
  take("--size", &a.size);
  take("--nodes", &a.nodes);
  take("--steps", &a.steps);
  take("--inner-steps", &a.inner_steps);
  take("--dtype", &dtype);
  take("--tolerance", &a.tolerance);
  if (!flags.empty()) Fail("unknown flag " + flags.begin()->first);
  g_rank = a.rank;
  ConfigureMetaTorch(1);
  if (!a.dump.empty()) return Dump(a);
  std::shared_ptr<comm::Store> store = Take(comm::FileStore::Open(a.store), "open the store");
  std::unique_ptr<comm::ProcessGroup> world =
      Take(comm::ProcessGroup::Create(store, {.prefix = "meta", .rank = a.rank, .size = a.size}),
           "form the group");
  // Several nodes: the dense all-reduce through HO-Ring with a threshold low enough that this
  // small model takes the hierarchical path.
  std::unique_ptr<comm::HierarchicalRing> ring;
  comm::Collectives* dense = world.get();
  if (a.nodes > 1) {
    ring = Take(
        comm::HierarchicalRing::Create(*world, comm::Topology::Uniform(a.nodes, a.size / a.nodes),
                                       {.threshold_bytes = 0}),
        "form HO-Ring");
    dense = ring.get();
  }
  return dtype == "f64" ? Equivalence<double>(a, *world, *dense)
                        : Equivalence<float>(a, *world, *dense);
}

}  // namespace
}  // namespace baton::meta

int main(int argc, char** argv) { return baton::meta::Main(argc, argv); }
