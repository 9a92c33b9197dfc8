// The stage autoscaler's rule (AntBatchInfer §4), period by period.
#include "infer/autoscaler.h"

#include <gtest/gtest.h>

namespace baton::infer {
namespace {

StageCounts Counts(int readers, int pre, std::vector<int32_t> predictors, int writers) {
  StageCounts c;
  c.readers = readers;
  c.preprocessors = pre;
  c.predictors = std::move(predictors);
  c.writers = writers;
  return c;
}

StageLoad Load(double raw, std::vector<double> model, double write, double cpu) {
  return StageLoad{raw, std::move(model), write, cpu};
}

TEST(StageAutoscaler, StarvedPredictorsGetMorePreprocessorsWhenRawBatchesWait) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 4), 1);
  StageCounts next = scaler.Decide(Load(0.8, {0.0}, 0.0, 0.5), Counts(1, 1, {1}, 1));
  EXPECT_EQ(next.preprocessors, 2);
  EXPECT_EQ(next.readers, 1);
}

TEST(StageAutoscaler, StarvedPredictorsGetMoreReadersWhenNothingWaits) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 4), 1);
  StageCounts next = scaler.Decide(Load(0.0, {0.05}, 0.0, 0.3), Counts(1, 1, {1}, 1));
  EXPECT_EQ(next.readers, 2);
  EXPECT_EQ(next.preprocessors, 1);
}

TEST(StageAutoscaler, AFullPredictQueueAddsAPredictorOnlyWhileCoresAreIdle) {
  StageAutoscaler idle(Counts(4, 4, {4, 4}, 4), 2);
  StageCounts next = idle.Decide(Load(0.5, {0.95, 0.2}, 0.0, 0.5), Counts(1, 1, {1, 1}, 1));
  EXPECT_EQ(next.predictors, (std::vector<int32_t>{2, 1}));
  StageAutoscaler busy(Counts(4, 4, {4, 4}, 4), 2);
  next = busy.Decide(Load(0.5, {0.95, 0.2}, 0.0, 0.95), Counts(1, 1, {1, 1}, 1));
  EXPECT_EQ(next.predictors, (std::vector<int32_t>{1, 1}));
}

TEST(StageAutoscaler, AFullWriteQueueAddsAWriterWithinTheCap) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 1), 1);
  StageCounts next = scaler.Decide(Load(0.5, {0.5}, 1.0, 0.5), Counts(1, 1, {1}, 1));
  EXPECT_EQ(next.writers, 1);  // capped
}

TEST(StageAutoscaler, AChangedStageWaitsTwoPeriodsThenMayGrowAgain) {
  StageAutoscaler scaler(Counts(4, 4, {8}, 4), 1);
  StageCounts c = Counts(1, 1, {1}, 1);
  const StageLoad full = Load(0.5, {1.0}, 0.0, 0.2);
  c = scaler.Decide(full, c);
  EXPECT_EQ(c.predictors[0], 2);
  c = scaler.Decide(full, c);
  EXPECT_EQ(c.predictors[0], 2);
  c = scaler.Decide(full, c);
  EXPECT_EQ(c.predictors[0], 2);
  c = scaler.Decide(full, c);
  EXPECT_EQ(c.predictors[0], 3);
}

TEST(StageAutoscaler, AStageIdleForThreePeriodsShrinksButNeverBelowOne) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 4), 1);
  StageCounts c = Counts(1, 1, {1}, 3);
  const StageLoad quiet = Load(0.5, {0.5}, 0.0, 0.5);
  c = scaler.Decide(quiet, c);
  c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 3);
  c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 2);
  for (int i = 0; i < 20; ++i) c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 1);
  EXPECT_EQ(c.readers, 1);  // readers never shrink
}

}  // namespace
}  // namespace baton::infer
