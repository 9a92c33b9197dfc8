#include "infer/autoscaler.h"

#include <cstddef>
#include <utility>

namespace baton::infer {
namespace {

constexpr double kDry = 0.1;
constexpr double kFull = 0.9;
constexpr double kCpuBusy = 0.85;
constexpr int kFreezePeriods = 2;
constexpr int kEmptyPeriodsToShrink = 3;

}  // namespace

StageAutoscaler::StageAutoscaler(StageCounts caps, std::size_t models)
    : caps_(std::move(caps)), predictors_(models) {}

bool StageAutoscaler::Step(Memo& memo, double input_fill, bool want_more, int32_t cap,
                           int32_t* count) {
  memo.empty = input_fill <= 0.0 ? memo.empty + 1 : 0;
  if (memo.frozen > 0) {
    --memo.frozen;
    return false;
  }
  if (want_more && *count < cap) {
    ++*count;
    memo.frozen = kFreezePeriods;
    memo.empty = 0;
    return true;
  }
  if (!want_more && memo.empty >= kEmptyPeriodsToShrink && *count > 1) {
    --*count;
    memo.frozen = kFreezePeriods;
    memo.empty = 0;
    return true;
  }
  return false;
}

StageCounts StageAutoscaler::Decide(const StageLoad& load, const StageCounts& now) {
  StageCounts next = now;
  const bool starving = !load.model_fill.empty() && load.model_fill[0] < kDry;
  const bool raw_waiting = load.raw_fill >= kDry;
  // Readers only grow (their "input" is never empty): a reader mid-shard cannot stop cheaply.
  Step(readers_, 1.0, starving && !raw_waiting, caps_.readers, &next.readers);
  Step(preprocessors_, load.raw_fill, starving && raw_waiting, caps_.preprocessors,
       &next.preprocessors);
  for (std::size_t m = 0; m < next.predictors.size() && m < load.model_fill.size(); ++m) {
    const int32_t cap = m < caps_.predictors.size() ? caps_.predictors[m] : next.predictors[m];
    Step(predictors_[m], load.model_fill[m], load.model_fill[m] > kFull && load.cpu < kCpuBusy, cap,
         &next.predictors[m]);
  }
  Step(writers_, load.write_fill, load.write_fill > kFull, caps_.writers, &next.writers);
  return next;
}

}  // namespace baton::infer
