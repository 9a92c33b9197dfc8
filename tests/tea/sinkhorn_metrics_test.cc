// Sinkhorn on a sparse support against a direct dense computation, and the ranking metrics.
#include <gtest/gtest.h>

#include <cmath>

#include "tea/metrics.h"
#include "tea/sinkhorn.h"

namespace baton::tea {
namespace {

TEST(SinkhornTest, SparseSupportEqualsDenseComputationRestrictedToIt) {
  // 3 rows, k = 2 entries each, over 3 columns.
  const std::vector<int32_t> cols = {0, 1, 1, 2, 0, 2};
  const std::vector<float> s = {0.9f, 0.3f, 0.8f, 0.1f, 0.2f, 0.7f};
  const double t = 0.05;
  double dense[3][3] = {};
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) dense[i][cols[i * 2 + j]] = std::exp(s[i * 2 + j] / t);
  }
  for (int it = 0; it < 5; ++it) {
    for (auto& row : dense) {
      double sum = row[0] + row[1] + row[2];
      for (double& v : row) v /= sum;
    }
    for (int c = 0; c < 3; ++c) {
      double sum = dense[0][c] + dense[1][c] + dense[2][c];
      for (auto& row : dense) row[c] /= sum;
    }
  }
  std::vector<float> v = s;
  Sinkhorn(&v, cols, 3, 2, 3, t, 5, 2);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 2; ++j) EXPECT_NEAR(v[i * 2 + j], dense[i][cols[i * 2 + j]], 1e-6);
  }
  // After the last column step every column sums to one.
  EXPECT_NEAR(v[0] + v[4], 1.0, 1e-6);
}

TEST(SinkhornTest, LargeScoresDoNotOverflow) {
  std::vector<float> v = {1.0f, 0.99f};  // exp(1 / 0.001) overflows without the row-max shift
  Sinkhorn(&v, {0, 1}, 1, 2, 2, 0.001, 3, 1);
  EXPECT_TRUE(std::isfinite(v[0]) && std::isfinite(v[1]));
  EXPECT_NEAR(v[0], 1.0, 1e-6);
}

TEST(MetricsTest, RanksAndSummaryOnHandCheckedCase) {
  // Row 0: truth 7 first. Row 1: truth 4 second. Row 2: truth 9 tied with col 3 (lower id first).
  // Row 3: truth absent (a miss).
  const std::vector<int32_t> cols = {7, 1, 2, 5, 4, 6, 9, 3, 8, 0, 1, 2};
  const std::vector<float> vals = {0.9f, 0.1f, 0.0f, 0.8f, 0.2f, 0.0f,
                                   0.5f, 0.5f, 0.0f, 0.3f, 0.3f, 0.3f};
  const std::vector<int32_t> truth = {7, 4, 9, 11};
  std::vector<int32_t> ranks = Ranks(vals, cols, 4, 3, truth);
  EXPECT_EQ(ranks, (std::vector<int32_t>{0, 1, 1, -1}));
  Metrics m = Summarize(ranks);
  EXPECT_EQ(m.n, 4);
  EXPECT_EQ(m.misses, 1);
  EXPECT_DOUBLE_EQ(m.hits1, 0.25);
  EXPECT_DOUBLE_EQ(m.hits10, 0.75);
  EXPECT_DOUBLE_EQ(m.mrr, (1.0 + 0.5 + 0.5) / 4);
  Metrics sub = Summarize(ranks, {1, 0, 0, 1});
  EXPECT_EQ(sub.n, 2);
  EXPECT_DOUBLE_EQ(sub.hits1, 0.5);
}

}  // namespace
}  // namespace baton::tea
