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

// Every stage busy half the time unless a test says otherwise.
StageLoad Load(double raw, std::vector<double> model, double write, double cpu) {
  StageLoad load{raw, model, write, cpu, 0.5, std::vector<double>(model.size(), 0.5), 0.5};
  return load;
}

TEST(StageAutoscaler, StarvedPredictorsGetMorePreprocessorsWhenRawBatchesWait) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 4), 1);
  StageCounts next = scaler.Decide(Load(0.8, {0.0}, 0.0, 0.5), Counts(1, 1, {1}, 1));
  EXPECT_EQ(next.preprocessors, 2);
  EXPECT_EQ(next.readers, 1);
}

TEST(StageAutoscaler, StarvedPredictorsGetMorePreprocessorsWhenTheseAreBusy) {
  StageAutoscaler scaler(Counts(4, 4, {4}, 4), 1);
  StageLoad load = Load(0.0, {0.0}, 0.0, 0.9);
  load.preprocess_busy = 0.95;  // the raw queue is empty because they take batches at once
  StageCounts next = scaler.Decide(load, Counts(1, 1, {1}, 1));
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
  StageLoad quiet = Load(0.5, {0.5}, 0.0, 0.5);
  quiet.writer_busy = 0.05;
  c = scaler.Decide(quiet, c);
  c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 3);
  c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 2);
  for (int i = 0; i < 20; ++i) c = scaler.Decide(quiet, c);
  EXPECT_EQ(c.writers, 1);
  EXPECT_EQ(c.readers, 1);  // readers never shrink
}

TEST(StageAutoscaler, ABusyDownstreamPredictorWithAnEmptyQueueIsNotShrunk) {
  // A downstream model's predictors drain their queue into their re-batching buffer at once.
  StageAutoscaler scaler(Counts(4, 4, {4, 4}, 4), 2);
  StageCounts c = Counts(1, 1, {1, 2}, 1);
  StageLoad load = Load(0.5, {0.5, 0.0}, 0.0, 0.95);
  load.predictor_busy = {0.5, 0.9};
  for (int i = 0; i < 10; ++i) c = scaler.Decide(load, c);
  EXPECT_EQ(c.predictors, (std::vector<int32_t>{1, 2}));
  load.predictor_busy = {0.5, 0.1};
  for (int i = 0; i < 10; ++i) c = scaler.Decide(load, c);
  EXPECT_EQ(c.predictors, (std::vector<int32_t>{1, 1}));
}

}  // namespace
}  // namespace baton::infer
