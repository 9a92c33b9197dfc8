#include "train/trainer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "comm/topology.h"
#include "common/clock.h"
#include "train/batch_split.h"
#include "train/flat_optimizer.h"
#include "train/paro/sharded_step.h"
#include "train/straggler/plan_watcher.h"

namespace baton::train {
namespace {

template <typename T>
void AddInto(T* sum, const T* x, size_t n) {
  for (size_t i = 0; i < n; ++i) sum[i] += x[i];
}

template <typename T>
constexpr comm::DataType kTypeOf =
    std::is_same_v<T, double> ? comm::DataType::kFloat64 : comm::DataType::kFloat32;

// What the ranks agree on each step, after the gradient in the step's one all-reduce (SUM).
// kDurableHi/Lo: rank 0's committable step + 1 (0: none) in two parts, each exact in float32;
// the others 0. kLost: held shards whose lease was lost. kFailed: rank 0 cannot persist. kPlan:
// rank 0 has a new batch plan from the master (BatchSplit::Exchange follows in the same step).
// kLeaving: ranks asked to stop (SIGTERM: a scale-down, a policy moving them): every rank takes a
// snapshot after this step and those ranks leave, so the generation that follows loses no step.
enum Flag {
  kRows,
  kFinished,
  kHeld,
  kLossSum,
  kLossRows,
  kDurableHi,
  kDurableLo,
  kLost,
  kFailed,
  kPlan,
  kLeaving,
  kFlags
};
constexpr int64_t kDurableSplit = int64_t{1} << 20;

// A peer failed or left (join the next generation); any other error stops the worker.
bool PeerFailure(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// HO-Ring over `world` for the gradient all-reduce of `bytes` a step when train.allreduce allows
// it and the generation spans 2 or more nodes with the same number (2 or more) of ranks on each;
// nullptr otherwise (the flat ring). In auto mode only for at least HO-Ring's threshold (1 MiB):
// under it the extra phases cost more than they save (bench/comm). Inside a node it exchanges
// over loopback sockets rather than shared memory: a node-mate that leaves the group alive (it
// saw the generation end first) closes its sockets and the others fail at once, where a
// shared-memory wait would only notice a dead process and sit out the collective timeout.
Result<std::unique_ptr<comm::HierarchicalRing>> MaybeHierarchical(comm::ProcessGroup& world,
                                                                  const sdk::Generation& gen,
                                                                  AllReduceMode mode,
                                                                  size_t bytes) {
  comm::HierarchicalOptions options;
  options.name = "train-hring";
  options.intra_node = comm::IntraNode::kDirect;
  if (mode == AllReduceMode::kHierarchical) options.threshold_bytes = 0;
  if (mode == AllReduceMode::kFlat || bytes < options.threshold_bytes) {
    return std::unique_ptr<comm::HierarchicalRing>();
  }
  std::vector<int64_t> node_of_rank;
  for (const sdk::GenerationMember& m : gen.members) node_of_rank.push_back(m.node_rank);
  comm::Topology topology = comm::Topology::FromNodeIds(node_of_rank);
  if (topology.num_nodes() < 2 || !topology.uniform() || topology.ranks_per_node() < 2) {
    return std::unique_ptr<comm::HierarchicalRing>();
  }
  if (gen.rank == 0) {
    spdlog::info("generation {}: gradient all-reduce ({} KiB) by HO-Ring over {} nodes x {} ranks",
                 gen.id, bytes / 1024, topology.num_nodes(), topology.ranks_per_node());
  }
  return comm::HierarchicalRing::Create(world, std::move(topology), options);
}

}  // namespace

Result<double> Trainer::ForwardBackward(const std::vector<infer::HostTensor>& batch, int64_t rows,
                                        int64_t micro, void* grad_sum) {
  const size_t bytes = model_.size() * comm::ElementSize(model_.dtype());
  if (rows == 0) {
    model_.ZeroGrads();
    std::memcpy(grad_sum, model_.grads(), bytes);
    return 0.0;
  }
  if (micro <= 0 || rows <= micro) {
    BATON_ASSIGN_OR_RETURN(double loss, model_.ForwardBackward(batch));
    std::memcpy(grad_sum, model_.grads(), bytes);
    return loss;
  }
  // Gradient accumulation: passes of at most `micro` rows, their gradient sums added up (the
  // model's gradient is a sum over samples, so the result equals one pass over all rows).
  double loss = 0;
  std::vector<infer::HostTensor> part(batch.size());
  for (int64_t begin = 0; begin < rows; begin += micro) {
    const int64_t end = std::min(rows, begin + micro);
    for (size_t t = 0; t < batch.size(); ++t) part[t] = infer::SliceRows(batch[t], begin, end);
    BATON_ASSIGN_OR_RETURN(double part_loss, model_.ForwardBackward(part));
    loss += part_loss;
    if (begin == 0) {
      std::memcpy(grad_sum, model_.grads(), bytes);
    } else if (model_.dtype() == comm::DataType::kFloat64) {
      AddInto(static_cast<double*>(grad_sum), static_cast<const double*>(model_.grads()),
              model_.size());
    } else {
      AddInto(static_cast<float*>(grad_sum), static_cast<const float*>(model_.grads()),
              model_.size());
    }
  }
  return loss;
}

Trainer::Trainer(const TrainSpec& spec, TrainableModel& model, sdk::Worker& worker,
                 sdk::Rendezvous& rendezvous, TrainerOptions options)
    : spec_(spec),
      model_(model),
      worker_(worker),
      rendezvous_(rendezvous),
      options_(std::move(options)),
      feed_(spec, worker),
      checkpointer_(options_.checkpoint, feed_, rendezvous.Store(0)) {}

Status Trainer::Evaluate(std::string_view when) {
  const auto t0 = std::chrono::steady_clock::now();
  BATON_ASSIGN_OR_RETURN(EvalResult r, options_.evaluator->Run(model_));
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  worker_.SetGauge("train.eval_loss", r.mean_loss);
  if (r.auc) worker_.SetGauge("train.eval_auc", *r.auc);
  spdlog::info("eval at step {}{}: loss {:.6f} over {} rows{} ({:.0f} ms)", steps_, when,
               r.mean_loss, r.rows, r.auc ? fmt::format(", auc {:.4f}", *r.auc) : "", ms);
  return Status::Ok();
}

Status Trainer::Run() {
  return model_.dtype() == comm::DataType::kFloat64 ? RunTyped<double>() : RunTyped<float>();
}

template <typename T>
Status Trainer::RunTyped() {
  const size_t n = model_.size();
  T* params = static_cast<T*>(model_.params());
  T* grads = static_cast<T*>(model_.grads());
  // train.sharding other than NNN: gradients and optimizer state sharded by a per-generation
  // ShardedStep (paro/sharded_step.h) instead of the all-reduce and the full optimizer here.
  const bool sharded = !(spec_.sharding == paro::Strategy{});
  FlatOptimizer<T> optimizer(spec_.optimizer, sharded ? 0 : n);
  std::unique_ptr<paro::ShardedStep<T>> sharded_step;
  std::vector<T> wire(n + kFlags);  // gradient and flags, all-reduced together

  sdk::Generation gen;
  std::unique_ptr<comm::ProcessGroup> group;
  // HO-Ring over `group` where the topology allows it (train.allreduce); the gradient all-reduce
  // goes through `reduce`: it, or the flat group.
  std::unique_ptr<comm::HierarchicalRing> hring;
  comm::Collectives* reduce = nullptr;
  std::unique_ptr<sdk::GenerationWatch> watch;

  std::vector<infer::HostTensor> batch;
  int64_t batch_rows = 0;
  bool finished = false;
  int64_t last_log_ms = MonoMillis(), samples_since_log = 0;
  // Steady throughput for the final summary: from the kSteadyFrom-th step of this process on.
  constexpr int64_t kSteadyFrom = 50;
  int64_t steady_start_ms = 0, steady_samples = 0, local_steps = 0;
  // Where a step's time goes (this process, all its steps), for the summary and the status.
  double data_ms = 0, compute_ms = 0, comm_ms = 0, update_ms = 0, checkpoint_ms = 0;
  // Every 250 ms, or train.straggler.report_ms with straggler rules on: the master's monitor
  // windows a rank's last few of these (each sent at once).
  const int64_t gauge_period_ms = spec_.straggler.on() ? spec_.straggler.report_ms : 250;
  int64_t last_gauges_ms = 0, gauge_steps = 0;
  double gauge_compute_ms = 0, gauge_comm_ms = 0;
  int64_t rows_computed = 0, gauge_rows = 0;  // this rank's rows through forward and backward
  auto now_ms = [] {
    return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count()) /
           1000.0;
  };

  BatchSplit split(spec_.global_batch, spec_.straggler);
  std::unique_ptr<PlanWatcher> plan_watcher;  // rank 0, with straggler rules on
  const int64_t started_ms = MonoMillis();

  StepExtension* const ext = options_.extension;
  if (ext != nullptr && sharded) {
    return Status::InvalidArgument(
        "train.sharding cannot be combined with a job kind's step hooks");
  }
  std::string extra;  // the extension's part of a snapshot

  auto leave_group = [&] {
    if (ext != nullptr && group) ext->Leave();
    watch.reset();
    reduce = nullptr;
    sharded_step.reset();
    hring.reset();  // before the group it runs over
    group.reset();  // closes the connections: peers still in the group fail at once
  };
  auto drop_group = [&](const Status& why) {
    spdlog::info("generation {}: {}; joining the next", gen.id, why.ToString());
    leave_group();
  };
  // A peer's failure: leave the group and join the next generation (OK); anything else stops
  // the worker (returned).
  auto rejoin_or_stop = [&](const Status& why) -> Status {
    if (!PeerFailure(why)) return why;
    drop_group(why);
    return Status::Ok();
  };

  TrainingBuffers buffers{model_.dtype(), n, params, {}, ext != nullptr ? &extra : nullptr};
  for (std::vector<T>* state : optimizer.StateBuffers())
    buffers.optimizer_state.push_back(state->data());
  bool trained_before = false;  // this process completed a step (a snapshot must exist)

  // Every member of the group back to the best snapshot any of them has, with its data progress.
  int64_t end_snapshot_at = -1;  // the step of the snapshot taken for the end of the data
  auto roll_back = [&]() -> Status {
    batch.clear();
    batch_rows = 0;
    finished = false;
    end_snapshot_at = -1;
    if (sharded) {
      // A snapshot is whole: restored into full staging, of which this rank keeps its part.
      BATON_ASSIGN_OR_RETURN(
          steps_, checkpointer_.Restore(*group, gen, sharded_step->BuffersForRestore(params),
                                        trained_before));
      return sharded_step->LoadRestored(params, steps_);
    }
    BATON_ASSIGN_OR_RETURN(steps_, checkpointer_.Restore(*group, gen, buffers, trained_before));
    optimizer.set_steps(steps_);
    if (ext != nullptr) BATON_RETURN_IF_ERROR(ext->LoadState(extra));
    return Status::Ok();
  };  // A rank lost a shard's lease (it was paused past it), seen in a step's flags or when a
  // checkpoint confirmed the leases: another rank may be applying that shard's rows too. Back to
  // the last snapshot, where neither had.
  auto roll_back_lost_lease = [&](int64_t step) -> Status {
    spdlog::warn("step {}: a lease was lost; rolling back to the last checkpoint", step);
    return roll_back();
  };

  // Forms the group of generation `gen`; every member rolls back to the best snapshot any of them
  // has (train/checkpointer.h), the batch in hand included.
  auto form = [&]() -> Status {
    comm::GroupOptions o;
    o.prefix = "train";
    o.rank = gen.rank;
    o.size = gen.size();
    o.timeout = options_.collective_timeout;
    BATON_ASSIGN_OR_RETURN(group, comm::ProcessGroup::Create(rendezvous_.Store(gen.id), o));
    if (sharded) {
      BATON_ASSIGN_OR_RETURN(
          sharded_step, paro::ShardedStep<T>::Create(*group, gen, spec_.sharding, spec_.allreduce,
                                                     n, spec_.optimizer));
      if (gen.rank == 0) {
        spdlog::info("generation {}: sharding {} over {} node(s) x {} rank(s)", gen.id,
                     paro::StrategyName(spec_.sharding), sharded_step->grid().nodes,
                     sharded_step->grid().per_node);
        if (sharded_step->grid().per_node == 1 && gen.nodes() < gen.size()) {
          spdlog::warn(
              "generation {}: nodes hold unequal numbers of ranks: sharding as one rank "
              "per node (intra-node granularity holds whole copies)",
              gen.id);
        }
      }
    } else {
      BATON_ASSIGN_OR_RETURN(
          hring, MaybeHierarchical(*group, gen, spec_.allreduce, wire.size() * sizeof(T)));
    }
    reduce = hring ? static_cast<comm::Collectives*>(hring.get()) : group.get();
    if (ext != nullptr) BATON_RETURN_IF_ERROR(ext->Form(*group, gen));
    watch = rendezvous_.Watch(gen.id);
    split.Reset(gen);
    if (gen.rank == 0 && spec_.straggler.on() && !plan_watcher) {
      plan_watcher = std::make_unique<PlanWatcher>([this] {
        return rendezvous_.ReadJobValue(kBatchPlanKey, std::chrono::milliseconds(1000));
      });
    }
    BATON_RETURN_IF_ERROR(roll_back());
    spdlog::info("generation {}: rank {} of {} on {} node(s), from step {}, {} rows a step{}",
                 gen.id, gen.rank, gen.size(), gen.nodes(), steps_, split.rows(gen.rank),
                 split.micro(gen.rank) > 0 && split.micro(gen.rank) < split.rows(gen.rank)
                     ? fmt::format(" in passes of at most {}", split.micro(gen.rank))
                     : "");
    return Status::Ok();
  };

  // A snapshot of the state after `step`: whole, so sharded optimizer state is gathered first.
  auto take_snapshot = [&](int64_t step) -> Result<Checkpointer::Outcome> {
    if (ext != nullptr) BATON_RETURN_IF_ERROR(ext->SaveState(&extra));
    if (!sharded) return checkpointer_.Take(*group, gen, step, buffers);
    BATON_ASSIGN_OR_RETURN(TrainingBuffers whole, sharded_step->ExportForSnapshot(params));
    Result<Checkpointer::Outcome> taken = checkpointer_.Take(*group, gen, step, whole);
    sharded_step->ReleaseStaging();  // Take encoded it: the memory sharding saves comes back
    return taken;
  };

  bool stopped = false;
  bool draining = false;            // stop requested: announced in this step's flags
  bool snapshot_elsewhere = false;  // left by a drain that other ranks stayed through
  while (true) {
    if (options_.stop != nullptr && options_.stop->load()) {
      // SIGTERM (the agent stops this worker: the job finished, a scale-down, a policy moving it):
      // in a group, announce it in the next step's flags so that every rank snapshots after that
      // step, then leave; the peers see the group fail and re-form without it from the snapshot.
      // Outside a group, or when that step did not complete, leave at once.
      if (!group || draining) {
        spdlog::info("stop requested; leaving at step {}", steps_);
        stopped = true;
        break;
      }
      draining = true;
    }
    if (!group) {
      spdlog::info("joining a generation (last: {})", rendezvous_.known_generation());
      BATON_ASSIGN_OR_RETURN(gen, rendezvous_.Join(options_.join_timeout));
      if (Status s = form(); !s.ok()) {
        BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
        continue;
      }
    }
    if (watch->ended()) {
      drop_group(Status::FailedPrecondition("the master ended the generation"));
      continue;
    }
    // At least one sample a rank (BatchSplit): more ranks than train.global_batch grow the batch,
    // rather than leave a rank with leased shards it never uses.
    const int64_t want = split.rows(gen.rank);
    double t0 = now_ms();
    if (batch_rows < want && !finished) {
      BATON_ASSIGN_OR_RETURN(DataFeed::Fill fill,
                             feed_.Take(static_cast<size_t>(want - batch_rows), &batch));
      batch_rows += static_cast<int64_t>(fill.rows);
      finished = fill.finished;
    }
    double t1 = now_ms();
    data_ms += t1 - t0;
    if (ext != nullptr) {
      if (Status s = ext->BeforeCompute(batch, batch_rows); !s.ok()) {
        BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
        continue;
      }
    }
    BATON_ASSIGN_OR_RETURN(
        double local_loss,
        ForwardBackward(batch, batch_rows, ext != nullptr ? 0 : split.micro(gen.rank),
                        wire.data()));
    if (spec_.straggler.emulate_us_per_sample > 0 || !spec_.straggler.inject.empty()) {
      const double delay = InjectedDelayMs(spec_.straggler, gen.rank, worker_.identity().node_id,
                                           static_cast<double>(MonoMillis() - started_ms) / 1000.0,
                                           now_ms() - t1, batch_rows);
      if (delay > 0)
        std::this_thread::sleep_for(
            std::chrono::microseconds(static_cast<int64_t>(delay * 1000.0)));
    }
    t0 = now_ms();
    compute_ms += t0 - t1;
    rows_computed += batch_rows;
    // One all-reduce a step: the gradient sum (already in `wire`), then what the ranks must agree
    // on (counts exact in float32 up to 2^24; the loss only feeds the log).
    T* flags = wire.data() + n;
    flags[kRows] = static_cast<T>(batch_rows);
    flags[kFinished] = finished && batch_rows == 0 && feed_.held() == 0 ? 1 : 0;
    flags[kHeld] = static_cast<T>(feed_.held());
    flags[kLossSum] = static_cast<T>(local_loss);
    flags[kLossRows] = static_cast<T>(batch_rows);
    const int64_t durable = gen.rank == 0 ? checkpointer_.CommittableStep() + 1 : 0;
    flags[kDurableHi] = static_cast<T>(durable / kDurableSplit);
    flags[kDurableLo] = static_cast<T>(durable % kDurableSplit);
    flags[kLost] = static_cast<T>(feed_.lost());
    flags[kFailed] = gen.rank == 0 && !checkpointer_.persist_error().ok() ? 1 : 0;
    const BatchPlan latest_plan =
        plan_watcher && gen.rank == 0 ? plan_watcher->latest() : BatchPlan{};
    flags[kPlan] = gen.rank == 0 && split.Pending(latest_plan) ? 1 : 0;
    flags[kLeaving] = draining ? 1 : 0;
    // Sharded: the flags alone now; the gradient goes through the sharded step below.
    if (Status s =
            sharded ? group->AllReduce(flags, kFlags, kTypeOf<T>, comm::ReduceOp::kSum)
                    : reduce->AllReduce(wire.data(), wire.size(), kTypeOf<T>, comm::ReduceOp::kSum);
        !s.ok()) {
      drop_group(s);
      continue;
    }
    if (flags[kPlan] > 0) {
      if (Status s = split.Exchange(*group, gen.rank, latest_plan, steps_); !s.ok()) {
        drop_group(s);
        continue;
      }
    }
    t1 = now_ms();
    comm_ms += t1 - t0;
    const auto total_rows = static_cast<int64_t>(flags[kRows]);
    const int64_t committable = static_cast<int64_t>(flags[kDurableHi]) * kDurableSplit +
                                static_cast<int64_t>(flags[kDurableLo]) - 1;
    // Whether this step is applied or not, every rank sees the same flags and takes the same path.
    if (flags[kFailed] > 0) {
      if (gen.rank == 0) return checkpointer_.persist_error();
      return Status::FailedPrecondition("rank 0 cannot persist checkpoints (its log says why)");
    }
    if (flags[kLost] > 0) {
      if (Status s = roll_back_lost_lease(steps_ + 1); !s.ok()) {
        BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
      }
      continue;
    }
    if (total_rows == 0) {
      if (flags[kHeld] > 0) {
        // No rank has rows left and some hold shards all of whose rows are applied: a snapshot
        // persisted first, then the model saved, then the commits (the job finishes with the last
        // commit, so both must be on disk before). The persist runs in the background; the ranks
        // keep exchanging flags until rank 0 has it on record.
        if (end_snapshot_at != steps_) {
          feed_.MarkApplied(steps_);
          Result<Checkpointer::Outcome> taken = take_snapshot(steps_);
          if (!taken.ok()) {
            BATON_RETURN_IF_ERROR(rejoin_or_stop(taken.status()));
          } else if (*taken == Checkpointer::Outcome::kLeaseLost) {
            if (Status s = roll_back_lost_lease(steps_); !s.ok()) {
              BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
            }
          } else if (*taken == Checkpointer::Outcome::kTaken) {
            end_snapshot_at = steps_;
          }
          continue;
        }
        if (committable < steps_) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
          continue;
        }
        double saved = 0;
        if (gen.rank == 0) {
          if (options_.evaluator != nullptr) BATON_RETURN_IF_ERROR(Evaluate(" (the saved model)"));
          BATON_RETURN_IF_ERROR(model_.Save(spec_.save_path));
          saved = 1;
          spdlog::info("step {}: model saved to {}", steps_, spec_.save_path);
        }
        if (Status s = group->AllReduce(&saved, 1, comm::DataType::kFloat64, comm::ReduceOp::kSum);
            !s.ok()) {
          drop_group(s);
          continue;
        }
        if (saved == 1) BATON_RETURN_IF_ERROR(feed_.CommitDurable(steps_));
        continue;
      }
      if (static_cast<int>(flags[kFinished]) == gen.size()) break;  // every rank is done
      // Shards are still leased elsewhere (a dead worker's, until its lease expires).
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      finished = false;
      continue;
    }
    const double lr = ScheduledLr(spec_.optimizer, spec_.schedule, steps_);
    if (sharded) {
      Result<double> applied =
          sharded_step->Apply(params, wire.data(), total_rows, lr, spec_.clip_grad_norm);
      if (!applied.ok()) {
        // As a failed all-reduce: the next generation rolls back to a snapshot anyway.
        drop_group(applied.status());
        continue;
      }
    } else {
      const T scale = static_cast<T>(1.0 / static_cast<double>(total_rows));
      for (size_t i = 0; i < n; ++i) grads[i] = wire[i] * scale;
      if (spec_.clip_grad_norm > 0) ClipGradNorm(grads, n, spec_.clip_grad_norm);
      optimizer.Update(params, grads, 0, n, lr);
      optimizer.EndStep();
      if (ext != nullptr) {
        if (Status s = ext->AfterUpdate(total_rows); !s.ok()) {
          BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
          continue;
        }
      }
    }
    ++steps_;
    trained_before = true;
    update_ms += now_ms() - t1;
    feed_.MarkApplied(steps_);
    // Shards whose rows a persisted snapshot holds are done: commit them (this step had records,
    // so the end of the data, where the model is saved before the last commits, is still ahead).
    BATON_RETURN_IF_ERROR(feed_.CommitDurable(committable));
    if (options_.evaluator != nullptr && gen.rank == 0 && steps_ % spec_.eval.every_steps == 0) {
      BATON_RETURN_IF_ERROR(Evaluate(""));
    }
    const bool leaving = flags[kLeaving] > 0;
    if (checkpointer_.Due(steps_) || leaving) {
      const double c0 = now_ms();
      Result<Checkpointer::Outcome> taken = take_snapshot(steps_);
      checkpoint_ms += now_ms() - c0;
      if (!taken.ok()) {
        BATON_RETURN_IF_ERROR(rejoin_or_stop(taken.status()));
        continue;
      }
      if (*taken == Checkpointer::Outcome::kLeaseLost) {
        if (Status s = roll_back_lost_lease(steps_); !s.ok()) {
          BATON_RETURN_IF_ERROR(rejoin_or_stop(s));
        }
        continue;
      }
      if (leaving && gen.rank == 0) {
        spdlog::info("step {}: {} rank(s) leaving; {}", steps_,
                     static_cast<int64_t>(flags[kLeaving]),
                     *taken == Checkpointer::Outcome::kTaken
                         ? "snapshot taken for the next generation"
                         : "no snapshot (a rank could not confirm its leases)");
      }
    }
    if (draining && leaving) {
      spdlog::info("stop requested; leaving at step {} after its snapshot", steps_);
      leave_group();  // the peers fail at once, not after this process's summary and persist
      stopped = true;
      // Others stay and hold this snapshot in their own nodes' memory: this node's copy is not
      // needed (a node emptied by a policy or a scale-down would otherwise keep it for ever).
      // When every rank leaves (the job is stopped), it stays for the resume.
      snapshot_elsewhere = static_cast<int>(flags[kLeaving]) < gen.size();
      break;
    }
    samples_since_log += total_rows;
    if (++local_steps == kSteadyFrom) steady_start_ms = MonoMillis();
    if (local_steps > kSteadyFrom) steady_samples += total_rows;
    batch.clear();
    batch_rows = 0;
    if (MonoMillis() - last_gauges_ms >= gauge_period_ms) {
      // What `baton status` shows per rank (and a straggler policy reads), over the last period.
      const double per = 1.0 / static_cast<double>(std::max<int64_t>(1, local_steps - gauge_steps));
      worker_.SetGauge("train.step", static_cast<double>(steps_));
      worker_.SetGauge("train.epoch", feed_.epoch());
      worker_.SetGauge("train.loss",
                       static_cast<double>(flags[kLossSum]) / static_cast<double>(total_rows));
      // The rows this rank computed a step (its part of the batch; fewer at the end of its data),
      // which the master's straggler monitor divides by train.compute_ms.
      worker_.SetGauge("train.batch", static_cast<double>(rows_computed - gauge_rows) * per);
      worker_.SetGauge("train.world", gen.size());
      worker_.SetGauge("train.rank", gen.rank);
      worker_.SetGauge("train.plan_version", static_cast<double>(split.version()));
      worker_.SetGauge("train.generation", static_cast<double>(gen.id));
      worker_.SetGauge("train.compute_ms", (compute_ms - gauge_compute_ms) * per);
      // Running totals of this process: the master's straggler monitor takes exact averages
      // between any two of its ticks from them, whatever the reports' timing.
      worker_.SetGauge("train.rows_total", static_cast<double>(rows_computed));
      worker_.SetGauge("train.compute_ms_total", compute_ms);
      worker_.SetGauge("train.comm_ms", (comm_ms - gauge_comm_ms) * per);
      worker_.SetGauge("train.lr", lr);
      last_gauges_ms = MonoMillis();
      gauge_steps = local_steps;
      gauge_compute_ms = compute_ms;
      gauge_rows = rows_computed;
      if (spec_.straggler.on()) worker_.ReportProgressSoon();
      gauge_comm_ms = comm_ms;
    }
    if (gen.rank == 0 && MonoMillis() - last_log_ms >= options_.log_every.count()) {
      const double seconds = static_cast<double>(MonoMillis() - last_log_ms) / 1000.0;
      spdlog::info("step {}: loss {:.6f}, {:.0f} samples/s, lr {:.3g}, {} rank(s)", steps_,
                   static_cast<double>(flags[kLossSum]) / static_cast<double>(total_rows),
                   static_cast<double>(samples_since_log) / seconds, lr, gen.size());
      last_log_ms = MonoMillis();
      samples_since_log = 0;
    }
  }
  if (local_steps > 0) {
    const double per = 1.0 / static_cast<double>(local_steps);
    spdlog::info(
        "per step (this rank): data {:.3f} ms, compute {:.3f} ms, communication {:.3f} ms, "
        "update {:.3f} ms, checkpoint {:.3f} ms",
        data_ms * per, compute_ms * per, comm_ms * per, update_ms * per, checkpoint_ms * per);
  }
  // Stopped holding no shard: the job's end most likely (the master stops workers once the last
  // shard is committed). Stopped mid-job, the node's memory slots stay for the restore, unless a
  // drain left the snapshot with ranks that stay.
  checkpointer_.Finish(gen, /*training_done=*/!stopped || feed_.held() == 0 || snapshot_elsewhere);
  for (const auto& [epoch, l] : checkpointer_.ledger()) {
    spdlog::info("epoch {}: {} records applied (fingerprint {:016x})", epoch, l.records,
                 l.fingerprint);
  }
  const Checkpointer::Stats& c = checkpointer_.stats();
  spdlog::info(
      "checkpoints (this rank): {} taken, {:.1f} MiB each, {:.2f} ms each on average, {} not "
      "persisted (a newer one replaced it while the disk was busy)",
      c.taken, static_cast<double>(c.bytes) / (1 << 20),
      c.taken > 0 ? c.ms / static_cast<double>(c.taken) : 0.0, c.persists_skipped);
  if (steady_start_ms > 0 && MonoMillis() > steady_start_ms) {
    spdlog::info(
        "training done after {} step(s); steady {:.0f} samples/s (all ranks, after this "
        "process's first {} steps)",
        steps_,
        static_cast<double>(steady_samples) * 1000.0 /
            static_cast<double>(MonoMillis() - steady_start_ms),
        kSteadyFrom);
  } else {
    spdlog::info("training done after {} step(s)", steps_);
  }
  return Status::Ok();
}

}  // namespace baton::train
