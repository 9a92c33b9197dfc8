// BatchSplit: the split of train.global_batch the ranks of a generation run (straggler/
// batch_plan.h). A generation starts from the equal split; rank 0 learns of the master's plans
// (straggler/plan_watcher.h) and sets a flag in the step's all-reduce when one is pending; in that
// same step every rank calls Exchange, which broadcasts the plan from rank 0, so all ranks run it
// from the next step on.
#pragma once

#include <cstdint>

#include "comm/collectives.h"
#include "common/status.h"
#include "sdk/rendezvous.h"
#include "train/straggler/batch_plan.h"
#include "train/straggler/straggler_spec.h"

namespace baton::train {

class BatchSplit {
 public:
  // `straggler`: micro_batch caps a rank's passes unless a plan says otherwise; `speeds` known in
  // advance set a generation's first split.
  BatchSplit(int64_t global_batch, const StragglerSpec& straggler)
      : global_batch_(global_batch), straggler_(straggler) {}

  // A generation formed: the equal split, or shares by train.straggler.speeds when it lists one
  // speed per rank (every rank computes the same split from the same spec).
  void Reset(const sdk::Generation& gen);
  int64_t rows(int rank) const { return plan_.rows[static_cast<size_t>(rank)]; }
  // The most rows `rank` runs in one forward/backward pass; 0: all in one.
  int64_t micro(int rank) const;
  uint64_t version() const { return plan_.version; }

  // Rank 0: whether `latest` is a plan for this generation the ranks do not run yet and that
  // fits it (a plan that does not is logged once and ignored).
  bool Pending(const BatchPlan& latest);
  // Every rank, in the step whose flags said a plan is pending: rank 0's `latest` reaches all
  // (the others' is ignored) and becomes the split from the next step. Unavailable when a peer
  // fails during the broadcast.
  Status Exchange(comm::Collectives& group, int rank, const BatchPlan& latest, int64_t step);

 private:
  int64_t global_batch_;
  const StragglerSpec& straggler_;
  BatchPlan plan_;
  uint64_t rejected_version_ = 0;
};

}  // namespace baton::train
