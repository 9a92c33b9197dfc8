// baton-meta-train: G-Meta training of one rank over Meta-IO episode files (docs/meta.md).
//
// Ranks are started by hand (or by bench/meta/run.sh) and meet in a file store: --rank, --size,
// --store. Every epoch deals a seeded shuffle of the training episodes meta-batch by meta-batch
// (--tasks-per-step per rank); each meta-step is the distributed one of meta_trainer.h. Then the
// held-out episodes are scored few-shot (adapted on their support rows) and the AUC of their
// query rows printed, with figures as key=value lines on rank 0.
//
// This program is the meta-step on ranks the caller starts; running it as a job kind under the
// master (episodes leased as shards, snapshots, restarts) is not built yet.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "comm/file_store.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "common/files.h"
#include "meta/evaluation.h"
#include "meta/io/episode_file.h"
#include "meta/io/prefetcher.h"
#include "meta/meta_trainer.h"

namespace baton::meta {
namespace {

struct Flags {
  std::string model, train, eval, store, order = "first", adapt = "all", sparse_opt = "adagrad";
  std::string addr = "127.0.0.1", allreduce = "auto", rows;
  int rank = 0, size = 1, nodes = 1, epochs = 2, tasks_per_step = 8, inner_steps = 1;
  int eval_adapt_steps = -1, threads = 1;
  double inner_lr = 0.1, outer_lr = 0.003, sparse_lr = 0.05;
  uint64_t seed = 1;
  int lookups_per_step = 1;
  bool plain = false, no_dedup = false, per_task = false;
};

int Fail(const std::string& what) {
  std::fprintf(stderr, "baton-meta-train: %s\n", what.c_str());
  return 1;
}

int Usage(const std::string& what) {  // a bad flag: exit 2, as every baton program
  std::fprintf(stderr, "baton-meta-train: %s (see --help)\n", what.c_str());
  return 2;
}

// Ranks started with different options or files would deal different episodes, step a different
// number of times (a hang in a collective) or drift apart: every rank compares a fingerprint of
// what must agree, and all fail together when one differs.
Status SameEverywhere(comm::ProcessGroup* world, const Flags& f, size_t episodes,
                      const MetaModel& model) {
  if (world == nullptr) return Status::Ok();
  const std::string what =
      std::to_string(f.seed) + "|" + std::to_string(f.tasks_per_step) + "|" +
      std::to_string(f.epochs) + "|" + f.order + "|" + std::to_string(f.inner_steps) + "|" +
      std::to_string(f.inner_lr) + "|" + f.adapt + "|" + std::to_string(f.outer_lr) + "|" +
      f.sparse_opt + "|" + std::to_string(f.sparse_lr) + "|" + std::to_string(f.plain) + "|" +
      std::to_string(f.no_dedup) + "|" + std::to_string(f.lookups_per_step) + "|" +
      std::to_string(f.per_task) + "|" + std::to_string(f.nodes) + "|" + f.allreduce + "|" +
      std::to_string(episodes) + "|" + std::to_string(model.size()) + "|" +
      std::to_string(model.embedding_dim()) + "|" + std::to_string(!f.eval.empty());
  int64_t low = static_cast<int64_t>(std::hash<std::string>{}(what) >> 1), high = low;
  BATON_RETURN_IF_ERROR(world->AllReduce(&low, 1, comm::DataType::kInt64, comm::ReduceOp::kMin));
  BATON_RETURN_IF_ERROR(world->AllReduce(&high, 1, comm::DataType::kInt64, comm::ReduceOp::kMax));
  if (low != high) {
    return Status::InvalidArgument(
        "the ranks were started with different options, training files or models (every rank "
        "needs the same flags but --rank and --addr, and the same files)");
  }
  return Status::Ok();
}

template <typename T>
int Train(const Flags& f, MetaModel& model, comm::ProcessGroup* world, comm::Collectives* dense) {
  Result<EpisodeFile> train_file = EpisodeFile::Open(f.train);
  if (!train_file.ok()) return Fail(train_file.status().ToString());
  if (train_file->size() == 0) return Fail(f.train + " holds no episode");
  if (Status same = SameEverywhere(world, f, train_file->size(), model); !same.ok()) {
    return Fail(same.ToString());
  }
  auto train = std::make_shared<const EpisodeFile>(std::move(*train_file));
  if (static_cast<int>(train->num_dense()) != model.num_dense() ||
      static_cast<int>(train->num_sparse()) != model.num_sparse()) {
    return Fail(f.train + " has " + std::to_string(train->num_dense()) + " dense and " +
                std::to_string(train->num_sparse()) + " sparse columns; " + f.model + " takes " +
                std::to_string(model.num_dense()) + " and " + std::to_string(model.num_sparse()));
  }
  typename EmbeddingShard<T>::Options so;
  so.dim = model.embedding_dim();
  so.rank = f.rank;
  so.world = f.size;
  so.seed = f.seed;
  so.optimizer.kind = *ParseSparseOptimizer(f.sparse_opt);
  so.optimizer.lr = f.sparse_lr;
  if (so.optimizer.kind == SparseOptimizerKind::kAdam) so.optimizer.eps = 1e-8;
  EmbeddingShard<T> shard(so);
  if (!f.rows.empty()) {  // a table a kind: meta job saved (its rows this rank owns)
    Result<std::string> blob = ReadFile(f.rows);
    if (!blob.ok()) return Fail(blob.status().ToString());
    if (Status s = shard.Import(*blob); !s.ok()) return Fail(f.rows + ": " + s.ToString());
  }
  MetaStepOptions options;
  options.plain = f.plain;
  options.deduplicate = !f.no_dedup;
  options.lookups_per_step = f.lookups_per_step;
  options.maml.batched = !f.per_task;
  options.maml.inner_steps = f.inner_steps;
  options.maml.inner_lr = f.inner_lr;
  options.maml.second_order = f.order == "second";
  options.maml.adapt = *ParseInnerParams(f.adapt);
  options.outer.kind = train::OptimizerKind::kAdam;
  options.outer.lr = f.outer_lr;
  MetaTrainer<T> trainer(&model, dense, world, &shard, options);

  const size_t per_step = static_cast<size_t>(f.tasks_per_step);
  const size_t global = per_step * static_cast<size_t>(f.size);
  const size_t steps = (train->size() + global - 1) / global;
  const auto start = std::chrono::steady_clock::now();
  auto last_report = start;
  int64_t tasks_done = 0;
  double loss = 0, io_wait = 0, lookup_s = 0, compute_s = 0, sync_s = 0, push_s = 0;
  size_t rows_fetched = 0, ids = 0;
  for (int epoch = 0; epoch < f.epochs; ++epoch) {
    std::vector<size_t> order(train->size());
    std::iota(order.begin(), order.end(), size_t{0});
    std::shuffle(order.begin(), order.end(), std::mt19937_64(f.seed * 1000 + epoch));
    std::vector<size_t> mine;
    std::vector<size_t> counts;  // this rank's tasks in each meta-step
    for (size_t s = 0; s < steps; ++s) {
      const size_t begin = std::min(order.size(), s * global + per_step * f.rank);
      const size_t end = std::min(order.size(), begin + per_step);
      mine.insert(mine.end(), order.begin() + begin, order.begin() + end);
      counts.push_back(end - begin);
    }
    EpisodePrefetcher prefetcher(train, mine, /*depth=*/2 * per_step);
    for (size_t s = 0; s < steps; ++s) {
      std::vector<Episode> tasks;
      for (size_t k = 0; k < counts[s]; ++k) {
        Result<std::optional<Episode>> next = prefetcher.Next();
        if (!next.ok()) return Fail(next.status().ToString());
        tasks.push_back(std::move(**next));
      }
      Result<MetaStepStats> st = trainer.Step(tasks);
      if (!st.ok()) return Fail("meta-step " + std::to_string(s) + ": " + st.status().ToString());
      tasks_done += st->tasks;
      loss = st->loss;
      lookup_s += st->lookup_s;
      compute_s += st->compute_s;
      sync_s += st->dense_sync_s;
      push_s += st->push_s;
      rows_fetched += st->rows_fetched;
      ids += st->ids;
      const auto now = std::chrono::steady_clock::now();
      if (f.rank == 0 && now - last_report > std::chrono::seconds(5)) {
        last_report = now;
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double done = static_cast<double>(epoch * steps + s + 1);
        const double total = static_cast<double>(f.epochs * steps);
        std::fprintf(stderr, "epoch %d/%d step %zu/%zu loss %.4f %.1f tasks/s eta %.0fs\n",
                     epoch + 1, f.epochs, s + 1, steps, loss, tasks_done / elapsed,
                     elapsed / done * (total - done));
      }
    }
    io_wait += prefetcher.waited_seconds();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int64_t train_lookups = trainer.exchange_counters().lookups;  // before evaluation's

  double auc = 0.5, auc_no_adapt = 0.5;
  size_t eval_tasks = 0;
  if (!f.eval.empty()) {
    Result<EpisodeFile> eval = EpisodeFile::Open(f.eval);
    if (!eval.ok()) return Fail(eval.status().ToString());
    std::vector<Episode> held_out;
    for (size_t i = static_cast<size_t>(f.rank); i < eval->size(); i += f.size) {
      Result<Episode> ep = eval->Read(i);
      if (!ep.ok()) return Fail(ep.status().ToString());
      held_out.push_back(std::move(*ep));
    }
    eval_tasks = eval->size();
    const int adapt_steps = f.eval_adapt_steps >= 0 ? f.eval_adapt_steps : f.inner_steps;
    struct Pass {
      int adapt_steps;
      double* auc;
    };
    for (Pass pass : {Pass{adapt_steps, &auc}, Pass{0, &auc_no_adapt}}) {
      Result<std::vector<ScoredRow>> scored = trainer.Evaluate(held_out, pass.adapt_steps);
      if (!scored.ok()) return Fail(scored.status().ToString());
      Result<std::vector<ScoredRow>> all = GatherScores(world, *scored);
      if (!all.ok()) return Fail(all.status().ToString());
      *pass.auc = Auc(*all);
    }
  }
  if (f.rank == 0) {
    const double steps_done = std::max(1.0, static_cast<double>(f.epochs * steps));
    std::printf(
        "mode=%s\nranks=%d\ntrain_tasks=%zu\nmeta_steps=%.0f\nseconds=%.3f\n"
        "tasks_per_s=%.2f\nfinal_loss=%.4f\neval_tasks=%zu\nauc=%.4f\nauc_no_adapt=%.4f\n"
        "lookups_per_step=%.2f\nrows_fetched_per_step=%.1f\nids_per_step=%.1f\n"
        "lookup_s=%.3f\ncompute_s=%.3f\ndense_sync_s=%.3f\npush_s=%.3f\nio_wait_s=%.3f\n",
        f.plain ? "plain" : "meta", f.size, train->size(), steps_done, seconds,
        tasks_done > 0 ? static_cast<double>(tasks_done) / seconds : 0.0, loss, eval_tasks, auc,
        auc_no_adapt, static_cast<double>(train_lookups) / steps_done,
        static_cast<double>(rows_fetched) / steps_done, static_cast<double>(ids) / steps_done,
        lookup_s, compute_s, sync_s, push_s, io_wait);
  }
  return 0;
}

int Main(int argc, char** argv) {
  Flags f;
  CLI::App app{
      "baton-meta-train: G-Meta (MAML for recommendation models) on one rank: row-sharded "
      "embeddings looked up once per meta-step, the dense part data-parallel. Start --size "
      "ranks that share --store (docs/meta.md)."};
  app.add_option("--model", f.model, "TorchScript meta model (examples/meta-ctr/export_model.py)")
      ->required();
  app.add_option("--train", f.train, "episode file to train on (baton meta prepare)")->required();
  app.add_option("--eval", f.eval, "held-out episode file: few-shot AUC after training");
  app.add_option("--rank", f.rank, "this rank (default 0)")->check(CLI::NonNegativeNumber);
  app.add_option("--size", f.size, "ranks (default 1)")->check(CLI::PositiveNumber);
  app.add_option("--store", f.store,
                 "directory the ranks meet in, a fresh one per run (required with --size > 1)");
  app.add_option("--nodes", f.nodes,
                 "nodes the ranks are spread over, node-major (default 1); above 1 the dense "
                 "all-reduce runs HO-Ring")
      ->check(CLI::PositiveNumber);
  app.add_option("--addr", f.addr,
                 "address this rank listens on, reachable by every other rank (default 127.0.0.1)");
  app.add_option("--allreduce", f.allreduce,
                 "dense all-reduce with --nodes > 1: auto (HO-Ring from 1 MiB, the flat ring "
                 "below; default), hierarchical (HO-Ring at any size) or flat")
      ->check(CLI::IsMember({"auto", "hierarchical", "flat"}));
  app.add_option("--epochs", f.epochs,
                 "passes over the training episodes (default 2; 0: only score --eval)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--rows", f.rows,
                 "start from this embedding table (SAVE.rows of a kind: meta job, with its "
                 "SAVE as --model)");
  app.add_option("--tasks-per-step", f.tasks_per_step, "tasks per rank per meta-step (default 8)")
      ->check(CLI::PositiveNumber);
  app.add_option("--order", f.order, "first (FOMAML, default) or second (full MAML)")
      ->check(CLI::IsMember({"first", "second"}));
  app.add_option("--inner-steps", f.inner_steps, "SGD steps on each support set (default 1)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--inner-lr", f.inner_lr, "inner learning rate α (default 0.1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--adapt", f.adapt, "what the inner loop adapts: dense, embedding, all (default)")
      ->check(CLI::IsMember({"dense", "embedding", "all"}));
  app.add_option("--outer-lr", f.outer_lr, "Adam learning rate on the dense part (default 0.003)")
      ->check(CLI::PositiveNumber);
  app.add_option("--sparse-opt", f.sparse_opt, "sgd, adagrad (default) or adam, on touched rows")
      ->check(CLI::IsMember({"sgd", "adagrad", "adam"}));
  app.add_option("--sparse-lr", f.sparse_lr, "sparse learning rate (default 0.05)")
      ->check(CLI::PositiveNumber);
  app.add_option("--eval-adapt-steps", f.eval_adapt_steps,
                 "inner steps on a held-out task's support set (default: --inner-steps)");
  app.add_option("--threads", f.threads, "torch intra-op threads (default 1)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", f.seed, "episode order and embedding initialisation (default 1)");
  app.add_flag("--plain", f.plain,
               "train the plain (non-meta) model on the same rows instead: the baseline");
  app.add_flag("--no-dedup", f.no_dedup, "ablation: look up every id occurrence");
  app.add_flag("--per-task", f.per_task,
               "ablation: one pass of the model per task instead of one per meta-batch (MAML)");
  app.add_option("--lookups-per-step", f.lookups_per_step,
                 "ablation: look the rows up this many times per meta-step (default 1)")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (f.rank >= f.size) return Usage("--rank must be below --size");
  if (f.size > 1 && f.store.empty()) return Usage("--store is required with --size > 1");
  if (f.size % f.nodes != 0) return Usage("--size must be a multiple of --nodes");

  ConfigureMetaTorch(f.threads);
  Result<std::unique_ptr<MetaModel>> model = LoadMetaModel(f.model);
  if (!model.ok()) return Fail(model.status().ToString());
  std::shared_ptr<comm::Store> store;
  std::unique_ptr<comm::ProcessGroup> world;
  std::unique_ptr<comm::HierarchicalRing> ring;
  comm::Collectives* dense = nullptr;
  if (f.size > 1) {
    Result<std::unique_ptr<comm::FileStore>> opened = comm::FileStore::Open(f.store);
    if (!opened.ok()) return Fail(opened.status().ToString());
    store = std::move(*opened);
    Result<std::unique_ptr<comm::ProcessGroup>> group = comm::ProcessGroup::Create(
        store, {.prefix = "meta-train", .rank = f.rank, .size = f.size, .address = f.addr});
    if (!group.ok()) return Fail(group.status().ToString());
    world = std::move(*group);
    dense = world.get();
    if (f.nodes > 1 && f.allreduce != "flat") {
      comm::HierarchicalOptions options;
      if (f.allreduce == "hierarchical") options.threshold_bytes = 0;
      Result<std::unique_ptr<comm::HierarchicalRing>> hr = comm::HierarchicalRing::Create(
          *world, comm::Topology::Uniform(f.nodes, f.size / f.nodes), options);
      if (!hr.ok()) return Fail(hr.status().ToString());
      ring = std::move(*hr);
      dense = ring.get();
    }
  }
  return (*model)->dtype() == comm::DataType::kFloat64
             ? Train<double>(f, **model, world.get(), dense)
             : Train<float>(f, **model, world.get(), dense);
}

}  // namespace
}  // namespace baton::meta

int main(int argc, char** argv) { return baton::meta::Main(argc, argv); }
