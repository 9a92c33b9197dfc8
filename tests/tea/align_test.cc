// Features and the whole pipeline on the toy dataset: invariants and determinism under a seed.
#include "tea/align.h"

#include <gtest/gtest.h>

#include "tea/features.h"
#include "test_data.h"

namespace baton::tea {
namespace {

using testing::DataDir;

TEST(FeaturesTest, RowsAreUnitOrZeroAndSameSeedGivesSameBits) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  Graph g = BuildGraph(*data, false);
  auto split = SplitPairs(*data, 50);
  ASSERT_TRUE(split.ok());
  FeatureOptions o;
  o.proj_dim = 20;
  o.threads = 2;
  Mat a = AspectFeatures(g, g.rel, split->seeds, o, 7, nullptr);
  Mat b = AspectFeatures(g, g.rel, split->seeds, o, 7, nullptr);
  Mat c = AspectFeatures(g, g.rel, split->seeds, o, 8, nullptr);
  ASSERT_EQ(a.cols(), 20 * 16);
  ASSERT_EQ(a.rows(), g.node_size);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  int64_t unit = 0;
  for (int64_t i = 0; i < a.rows(); ++i) {
    const double norm = a.row(i).norm();
    EXPECT_TRUE(norm == 0.0 || std::abs(norm - 1.0) < 1e-5) << "row " << i << " norm " << norm;
    unit += norm > 0;
  }
  EXPECT_GT(unit, 100);
}

TEST(AlignTest, SameSeedSameMetricsOnTestdata) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  AlignOptions o;
  o.num_seeds = 50;
  o.proj_dim = 32;
  o.topk = 20;
  auto r1 = Align(*data, o);
  auto r2 = Align(*data, o);
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  ASSERT_TRUE(r2.ok());
  ASSERT_EQ(r1->rounds.size(), r2->rounds.size());
  for (size_t i = 0; i < r1->rounds.size(); ++i) {
    EXPECT_EQ(r1->rounds[i].all.mrr, r2->rounds[i].all.mrr);
    EXPECT_EQ(r1->rounds[i].new_pseudo_pairs, r2->rounds[i].new_pseudo_pairs);
  }
  EXPECT_EQ(r1->test_pairs, 72);
  EXPECT_GT(r1->rounds[0].all.hits10, r1->rounds[0].all.hits1 - 1e-12);
  EXPECT_EQ(r1->width, 32 * 16);
}

TEST(AlignTest, SeedsNotBelowPairCountFailsAsInvalidArgument) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  AlignOptions o;
  o.num_seeds = 122;
  auto r = Align(*data, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::tea
