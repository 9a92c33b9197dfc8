// The held-out AUC (train/evaluator.h) against values worked out by hand.
#include "train/evaluator.h"

#include <gtest/gtest.h>

namespace baton::train {
namespace {

TEST(BinaryAuc, PerfectReversedTiedAndOneClass) {
  EXPECT_DOUBLE_EQ(*BinaryAuc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(*BinaryAuc({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}), 0.0);
  // All tied: every positive-negative pair counts half.
  EXPECT_DOUBLE_EQ(*BinaryAuc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}), 0.5);
  // Pairs (positive above negative): p=0.4 beats n=0.1, ties n=0.4 (half), loses to n=0.7;
  // p=0.8 beats all three. (1 + 0.5 + 0 + 3) / 6.
  EXPECT_DOUBLE_EQ(*BinaryAuc({0.1, 0.4, 0.4, 0.7, 0.8}, {0, 1, 0, 0, 1}), 4.5 / 6.0);
  EXPECT_FALSE(BinaryAuc({0.1, 0.2}, {1, 1}).has_value());
  EXPECT_FALSE(BinaryAuc({}, {}).has_value());
}

}  // namespace
}  // namespace baton::train
