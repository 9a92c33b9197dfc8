#include "infer/autoscaler.h"

#include <cstddef>
#include <utility>

namespace baton::infer {
namespace {

constexpr double kDry = 0.1;
constexpr double kFull = 0.9;
constexpr double kCpuBusy = 0.85;
constexpr int kFreezePeriods = 2;
constexpr double kSaturated = 0.7;  // busy fraction of a stage's threads
constexpr double kIdle = 0.25;
constexpr int kIdlePeriodsToShrink = 3;

}  // namespace

StageAutoscaler::StageAutoscaler(StageCounts caps, std::size_t models)
    : caps_(std::move(caps)), predictors_(models) {}

bool StageAutoscaler::Step(Memo& memo, bool idle, bool want_more, int32_t cap, int32_t* count) {
  memo.idle = idle ? memo.idle + 1 : 0;
  if (memo.frozen > 0) {
    --memo.frozen;
    return false;
  }
  if (want_more && *count < cap) {
    ++*count;
    memo.frozen = kFreezePeriods;
    memo.idle = 0;
    return true;
  }
  if (!want_more && memo.idle >= kIdlePeriodsToShrink && *count > 1) {
    --*count;
    memo.frozen = kFreezePeriods;
    memo.idle = 0;
    return true;
  }
  return false;
}

StageCounts StageAutoscaler::Decide(const StageLoad& load, const StageCounts& now) {
  StageCounts next = now;
  const bool starving = !load.model_fill.empty() && load.model_fill[0] < kDry;
  // The preprocessors are what holds the predictors back when raw batches wait for them or
  // they are busy most of the time; otherwise the readers do not bring enough.
  const bool preprocess_bound = load.raw_fill >= kDry || load.preprocess_busy > kSaturated;
  // Readers only grow: a reader mid-shard cannot stop cheaply, and an idle one costs nothing.
  Step(readers_, false, starving && !preprocess_bound, caps_.readers, &next.readers);
  Step(preprocessors_, load.preprocess_busy < kIdle, starving && preprocess_bound,
       caps_.preprocessors, &next.preprocessors);
  for (std::size_t m = 0; m < next.predictors.size() && m < load.model_fill.size(); ++m) {
    const int32_t cap = m < caps_.predictors.size() ? caps_.predictors[m] : next.predictors[m];
    const double busy = m < load.predictor_busy.size() ? load.predictor_busy[m] : 1.0;
    Step(predictors_[m], busy<kIdle, load.model_fill[m]> kFull && load.cpu < kCpuBusy, cap,
         &next.predictors[m]);
  }
  Step(writers_, load.writer_busy<kIdle, load.write_fill> kFull, caps_.writers, &next.writers);
  return next;
}

}  // namespace baton::infer
