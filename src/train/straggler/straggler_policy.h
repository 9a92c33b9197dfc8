// StragglerPolicy: AntDT's Controller for a training job, a controller policy on the master
// (master/controller.h). Each tick (the master's monitor period, 200 ms) it reads the ranks'
// reports from the cluster view (the gauges train.generation, train.world, train.rank,
// train.plan_version, and the running totals train.rows_total and train.compute_ms_total, whose
// differences since the last tick give each rank's exact rows and compute time in between),
// feeds them to the StragglerMonitor, shows each worker's ratio and class as the
// notes straggler.ratio and straggler.class (0 none, 1 transient, 2 persistent, 3 deterministic),
// and when a window closes lets its rule decide the split:
//   adjust_batch (ND): shares in proportion to speed while a straggler is confirmed, the equal
//     split once none is; at most one change per window, only on a predicted gain of min_gain;
//   profile (DD): once per generation, after its first window: shares in proportion to speed with
//     micro-batches of at most micro_batch rows, then fixed;
//   kill_restart (ND): a straggler flagged for persistent_after_s whose predicted saving over the
//     rest of the job (the job's remaining records at the predicted step time) beats
//     restart_margin x a restart's cost: agent actions move its node's workers to a spare node
//     (a live node planned to run none, never one emptied before) and empty its node; the
//     master plans the next generation from the new counts. One move at a time, at most
//     restarts_per_hour an hour; a move's cost is measured (action to the first report of the
//     full-size generation after it) and used for the next decision.
// The first two ticks of a generation are warm-up, not sampled (process start, the step-0
// checkpoint, first leases make the first steps unrepresentative).
// A decision is a BatchPlan published in the job's KV (PolicyHost::SetJobValue); rank 0 hands it
// to every rank at one step (train/straggler/batch_plan.h). Only kill_restart returns agent
// actions.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "master/policy_registry.h"
#include "train/straggler/batch_plan.h"
#include "train/straggler/straggler_monitor.h"
#include "train/straggler/straggler_spec.h"

namespace baton::train {

class StragglerPolicy final : public master::Policy {
 public:
  StragglerPolicy(StragglerSpec spec, int64_t global_batch, master::PolicyHost& host);

  std::string_view name() const override { return "straggler"; }
  std::vector<master::PolicyAction> Evaluate(const master::ClusterView& view) override;

  // The plan in force for the current generation (version 0: the equal split).
  const BatchPlan& plan() const { return plan_; }

 private:
  // A generation's rank as the worker reported it.
  struct Seen {
    // The worker's running totals (train.rows_total, train.compute_ms_total) at the last tick.
    double rows_total = -1, compute_ms_total = 0;
    double plan_version = -1;
  };
  void StartGeneration(uint64_t generation, int world, int64_t now_ms);
  void Decide(const std::vector<RankState>& states);
  void Publish(std::vector<int64_t> rows, std::vector<int64_t> micro, std::string reason);
  std::vector<master::PolicyAction> MaybeMove(const std::vector<RankState>& states,
                                              const master::ClusterView& view);
  // kill_restart's predicted saving over the rest of the job from moving `node`'s ranks to a
  // node as fast as the others (papers/antdt.md §6.4); nullopt when it cannot be predicted yet.
  std::optional<double> PredictedSavingMs(const std::string& node,
                                          const master::ClusterView& view) const;

  StragglerSpec spec_;
  int64_t global_batch_;
  master::PolicyHost& host_;
  StragglerMonitor monitor_;
  uint64_t generation_ = 0;
  std::vector<std::string> worker_of_rank_;
  std::map<std::string, Seen> seen_;
  BatchPlan plan_;
  uint64_t version_ = 0;               // the last version published (or seen) in this job
  int64_t windows_at_change_ = -1;     // monitor window count when the split last changed
  bool profiled_ = false;              // profile: this generation's split is decided
  bool halfway_ = false;               // the split in force is a half step back to equal
  int64_t warm_ticks_ = 0;             // ticks of this generation not sampled yet (warm-up)
  std::vector<StragglerClass> shown_;  // classes last logged, by rank
  // kill_restart.
  std::vector<std::string> emptied_;    // nodes moved off, never chosen again (job KV)
  std::vector<int64_t> moves_ms_;       // when each move was made (for restarts_per_hour)
  int64_t move_pending_since_ms_ = -1;  // the last move, until its generation starts
  int move_world_ = 0;                  // the world size that move left
  double restart_cost_ms_ = -1;         // measured; -1: none yet (restart_cost_s)
  bool told_no_spare_ = false;          // logged once per straggler
  double gen_rows_ = 0;                 // rows sampled in this generation
  int64_t gen_first_sample_ms_ = -1;    // when its first sample came
};

}  // namespace baton::train
