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

// Issue 10, item 19: the avx2 kernels (and the portable ones) compute the features of the best
// path: bf16 projections and element-wise loops give the same bits on avx512 and avx2.
TEST(FeaturesTest, EveryKernelPathGivesTheSameFeatures) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  Graph g = BuildGraph(*data, false);
  auto split = SplitPairs(*data, 50);
  ASSERT_TRUE(split.ok());
  FeatureOptions o;
  o.proj_dim = 20;
  o.kernel = KernelPath::kGeneric;
  const Mat generic = AspectFeatures(g, g.time, split->seeds, o, 7, nullptr);
  for (KernelPath p : {KernelPath::kAvx2, KernelPath::kAvx512}) {
    if (!KernelPathSupported(p)) continue;  // reported by KernelPathTest and the per-path tests
    o.kernel = p;
    const Mat got = AspectFeatures(g, g.time, split->seeds, o, 7, nullptr);
    // The generic loops do not fuse multiply-adds (no FMA in baseline x86-64): last-bit noise.
    EXPECT_LT((got - generic).cwiseAbs().maxCoeff(), 1e-5) << KernelPathName(p);
    if (p == KernelPath::kAvx512 && KernelPathSupported(KernelPath::kAvx2)) {
      o.kernel = KernelPath::kAvx2;
      EXPECT_TRUE(got == AspectFeatures(g, g.time, split->seeds, o, 7, nullptr));
    }
  }
}

TEST(AlignTest, KernelPathIsReportedAndAnUnknownOneIsInvalidArgument) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  AlignOptions o;
  o.num_seeds = 50;
  o.proj_dim = 32;
  o.topk = 20;
  o.rounds = 1;
  o.kernel = "generic";
  auto r = Align(*data, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->kernel, "generic");
  EXPECT_EQ(r->kernel_source, "option");
  EXPECT_EQ(r->cpu_features, CpuFeatureList());
  o.kernel = "neon";
  auto bad = Align(*data, o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// Issue 10, item 18: the report holds the alignment, not only metrics.
TEST(AlignTest, PredictionsListTheBestCandidatesOfEveryTestSource) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  AlignOptions o;
  o.num_seeds = 50;
  o.proj_dim = 32;
  o.topk = 20;
  o.predictions_k = 5;
  auto r = Align(*data, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Predictions& p = r->predictions;
  ASSERT_EQ(p.k, 5);
  ASSERT_EQ(static_cast<int64_t>(p.source.size()), r->test_pairs);
  EXPECT_EQ(p.round, r->rounds.back().round);
  int64_t top1_right = 0;
  for (size_t i = 0; i < p.source.size(); ++i) {
    EXPECT_EQ(p.source[i], data->pairs[50 + i].first);
    EXPECT_EQ(p.partner[i], data->pairs[50 + i].second);
    for (int j = 0; j < p.k; ++j) {
      EXPECT_EQ(data->side[p.candidate[i * p.k + j]], 2) << "candidate from KG2";
      if (j > 0) {
        EXPECT_GE(p.score[i * p.k + j - 1], p.score[i * p.k + j]);
      }
    }
    top1_right += p.candidate[i * p.k] == p.partner[i];
  }
  // The first prediction is what Hits@1 counts.
  EXPECT_DOUBLE_EQ(static_cast<double>(top1_right) / p.source.size(), r->rounds.back().all.hits1);
  EXPECT_FALSE(data->names[p.source[0]].empty());
}

TEST(AlignTest, UnmatchedAlignsEntitiesWithoutKnownPartner) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  AlignOptions o;
  o.proj_dim = 32;
  o.topk = 20;
  o.predictions_k = 3;
  o.unmatched = true;
  // The last 22 pairs are forgotten: their KG1 entities have no known partner, and with every
  // remaining pair a seed there are no test labels at all.
  Dataset unlabelled = *data;
  unlabelled.pairs.resize(100);
  o.num_seeds = 100;
  auto r = Align(unlabelled, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<char> seed(data->side.size(), 0);
  for (const auto& [a, b] : unlabelled.pairs) seed[a] = seed[b] = 1;
  int64_t kg1_free = 0, kg2_free = 0;
  for (size_t e = 0; e < data->side.size(); ++e) {
    kg1_free += data->side[e] == 1 && !seed[e];
    kg2_free += data->side[e] == 2 && !seed[e];
  }
  ASSERT_GE(kg1_free, 22);
  EXPECT_EQ(r->sources, kg1_free);
  EXPECT_EQ(r->candidates, kg2_free);
  EXPECT_EQ(r->rounds.back().all.n, 0);  // nothing to score against
  const Predictions& p = r->predictions;
  ASSERT_EQ(static_cast<int64_t>(p.source.size()), kg1_free);
  for (size_t i = 0; i < p.source.size(); ++i) {
    EXPECT_EQ(p.partner[i], -1);
    EXPECT_FALSE(seed[p.source[i]]);
    for (int j = 0; j < p.k; ++j) EXPECT_FALSE(seed[p.candidate[i * p.k + j]]);
  }
  // With 50 test pairs, the metrics cover those, ranked among all free candidates; the 22 others
  // are aligned without a label.
  o.num_seeds = 50;
  auto labelled = Align(unlabelled, o);
  ASSERT_TRUE(labelled.ok()) << labelled.status().ToString();
  EXPECT_EQ(labelled->test_pairs, 50);
  EXPECT_EQ(labelled->rounds.front().all.n, 50);
  EXPECT_EQ(labelled->sources, 72);
  EXPECT_GT(labelled->candidates, 72);
  o.faithful = true;
  EXPECT_EQ(Align(*data, o).status().code(), StatusCode::kInvalidArgument);
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

// Quirk Q5 against orders printed by CPython 3.11 (list(set(ids))).
TEST(AlignTest, SetIterationPositionsFollowCPython) {
  // list(set([40000, 3, 32769, 100, 65535])) == [40000, 32769, 3, 100, 65535]  (table size 32)
  EXPECT_EQ(CPythonSetTableSize(5), 32);
  EXPECT_EQ(SetIterationPositions({40000, 3, 32769, 100, 65535}),
            (std::vector<int32_t>{0, 2, 1, 3, 4}));
  // ids = range(300, 900, 3): 513 comes first; 300 is at 100, 510 at 199, 897 at 157.
  std::vector<int32_t> ids;
  for (int32_t v = 300; v < 900; v += 3) ids.push_back(v);
  const std::vector<int32_t> pos = SetIterationPositions(ids);
  EXPECT_EQ(pos[(513 - 300) / 3], 0);
  EXPECT_EQ(pos[0], 100);
  EXPECT_EQ(pos[(510 - 300) / 3], 199);
  EXPECT_EQ(pos[(897 - 300) / 3], 157);
}

// Faithful pseudo-labelling searches what is left of the candidate set in this order.
TEST(AlignTest, RemainingInSetOrderFollowsCPythonAfterRemovals) {
  // s = set([40000, 3, 32769, 100, 65535]); s.remove(32769); s.remove(100); list(s) ==
  // [40000, 3, 65535]
  const std::vector<int32_t> pos = SetIterationPositions({40000, 3, 32769, 100, 65535});
  EXPECT_EQ(RemainingInSetOrder(pos, {0, 0, 1, 1, 0}), (std::vector<int32_t>{0, 1, 4}));
  EXPECT_EQ(RemainingInSetOrder(pos, {0, 0, 0, 0, 0}), (std::vector<int32_t>{0, 2, 1, 3, 4}));
}

TEST(AlignTest, SetIterationPositionsOnYagoWiki20kTestSplit) {
  TEA_REQUIRE_DATA("YAGO-WIKI20K");
  auto data = LoadDataset(DataDir("YAGO-WIKI20K"));
  ASSERT_TRUE(data.ok());
  auto split = SplitPairs(*data, 400);
  ASSERT_TRUE(split.ok());
  std::vector<int32_t> left, right;
  for (const auto& [x, y] : split->test) {
    left.push_back(x);
    right.push_back(y);
  }
  ASSERT_EQ(right.size(), 19062u);
  EXPECT_EQ(CPythonSetTableSize(19062), 32768);
  // CPython: list(set(left)) == left; list(set(right)) starts with 32768 (test position 12554),
  // test-right 0 (19895) is at 6508 and the last one (39421) at 6507.
  const std::vector<int32_t> pl = SetIterationPositions(left);
  for (size_t i = 0; i < pl.size(); ++i) ASSERT_EQ(pl[i], static_cast<int32_t>(i));
  const std::vector<int32_t> pr = SetIterationPositions(right);
  EXPECT_EQ(pr[12554], 0);
  EXPECT_EQ(pr[0], 6508);
  EXPECT_EQ(pr[19061], 6507);
}

}  // namespace
}  // namespace baton::tea
