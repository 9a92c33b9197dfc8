// BatchPlan: how the ranks of one generation split train.global_batch, as AntDT's controller
// decides it (papers/antdt.md §6.2-6.3): rows per rank per step, and for gradient accumulation the
// largest micro-batch a rank runs in one forward/backward pass.
//
// The master's straggler policy publishes a plan in the job's KV under kBatchPlanKey; rank 0 of
// the generation watches that key (plan_watcher.h) and hands a new plan to every rank in the
// step's flags, so all ranks switch at the same step. A plan names the generation it was computed
// for: a new generation starts from the equal split until the policy speaks again. The global
// batch never changes, and the gradient is the sum over every rank's samples divided by it, so an
// unequal split changes speed, not the result.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton::train {

// train.global_batch when the spec gives none.
inline constexpr int64_t kDefaultGlobalBatch = 256;

// The job-scoped KV key the plan is published under.
inline constexpr const char* kBatchPlanKey = "train.batch_plan";

struct BatchPlan {
  // Grows with every plan the master publishes in a job; 0 is the equal split nobody published.
  uint64_t version = 0;
  uint64_t generation = 0;    // the generation it applies to; others ignore it
  std::vector<int64_t> rows;  // samples per step of each rank, by rank; they sum to the batch
  // Each rank's micro-batch cap; 0: train.straggler.micro_batch's (none: the part in one pass).
  std::vector<int64_t> micro;
  std::string reason;  // for the logs

  bool operator==(const BatchPlan&) const = default;
};

// Rank `rank` of `world`'s part of a global batch of `global` samples when all are equal: B/W,
// one more for r < B mod W, at least 1.
int64_t EqualPart(int64_t global, int rank, int world);
// Every rank's EqualPart, version 0.
BatchPlan EqualPlan(int64_t global, int world, uint64_t generation);

// One line: "version=V generation=G rows=a,b,.. micro=x,y,.. reason=free text".
std::string EncodeBatchPlan(const BatchPlan& plan);
// InvalidArgument naming the field for anything else.
Result<BatchPlan> DecodeBatchPlan(std::string_view text);
// OK when `plan` fits a generation of `world` ranks and a global batch of `global`: one entry per
// rank in rows and micro, every part >= 1, micro >= 0, the parts summing to `global` (to `world`
// when the batch is smaller: a rank's part is at least 1).
Status CheckBatchPlan(const BatchPlan& plan, int world, int64_t global);

}  // namespace baton::train
