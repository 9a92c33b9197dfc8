// Top-k search: the selection rule on hand-checked cases, and the fast int8 path against fp32.
#include "tea/topk.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "tea/linalg.h"
#include "tea/random.h"

namespace baton::tea {
namespace {

TEST(TopKTest, SelectsLargestDescendingWithTiesByLowerIndex) {
  const float s[] = {0.1f, 0.9f, 0.5f, 0.9f, -1.0f, 0.5f};
  int32_t idx[4];
  float out[4];
  SelectTopK(s, 6, 4, idx, out);
  EXPECT_EQ(std::vector<int32_t>(idx, idx + 4), (std::vector<int32_t>{1, 3, 2, 5}));
  EXPECT_FLOAT_EQ(out[0], 0.9f);
  EXPECT_FLOAT_EQ(out[3], 0.5f);
}

TEST(TopKTest, ExactSearchOnHandCheckedVectors) {
  Mat q(2, 2), c(3, 2);
  q << 1, 0, 0, 1;
  c << 0.6f, 0.8f, 1, 0, 0, -1;
  SearchOptions o;
  o.k = 2;
  o.exact = true;
  TopK t = TopKInnerProduct(q, c, o);
  EXPECT_EQ(t.idx, (std::vector<int32_t>{1, 0, 0, 1}));
  EXPECT_FLOAT_EQ(t.score[0], 1.0f);
  EXPECT_FLOAT_EQ(t.score[1], 0.6f);
  EXPECT_FLOAT_EQ(t.score[2], 0.8f);
  EXPECT_FLOAT_EQ(t.score[3], 0.0f);
}

Mat RandomUnitRows(int64_t rows, int64_t cols, uint64_t seed) {
  Mat m(rows, cols);
  FillGaussian(m.data(), m.size(), seed, 1);
  NormalizeRows(m.data(), rows, cols, cols, 1);
  return m;
}

// The int8 search on one kernel path (cpu.h); every path this CPU can run is tested, and the
// others are reported as skipped with the features the CPU lacks.
class Int8PathTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!KernelPathSupported(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << KernelPathName(GetParam())
                   << " kernels; it has " << CpuFeatureList();
    }
  }
  SearchOptions Fast() const {
    SearchOptions o;
    o.exact = false;
    o.kernel = GetParam();
    return o;
  }
};

TEST_P(Int8PathTest, FastSearchMatchesExactTopK) {
  // Queries correlated with some candidates, as in alignment, plus noise.
  Mat c = RandomUnitRows(3000, 272, 1);
  Mat q = RandomUnitRows(333, 272, 2);
  for (int64_t i = 0; i < q.rows(); ++i) q.row(i) += 0.5f * c.row(i * 7);
  NormalizeRows(q.data(), q.rows(), q.cols(), q.cols(), 1);
  SearchOptions o;
  o.k = 100;
  o.exact = true;
  TopK exact = TopKInnerProduct(q, c, o);
  SearchOptions f = Fast();
  f.k = o.k;
  f.rerank = o.k;  // re-score every candidate: the exact top-k
  TopK fast = TopKInnerProduct(q, c, f);
  ASSERT_EQ(fast.idx.size(), exact.idx.size());
  int64_t differ = 0;
  for (size_t j = 0; j < exact.idx.size(); ++j) differ += exact.idx[j] != fast.idx[j];
  EXPECT_EQ(differ, 0);
  for (size_t j = 0; j < exact.score.size(); ++j) {
    ASSERT_NEAR(fast.score[j], exact.score[j], 1e-5);
  }
}

TEST_P(Int8PathTest, PartialRerankKeepsExactHeadAndCloseTail) {
  Mat c = RandomUnitRows(2000, 512, 3);
  Mat q = RandomUnitRows(200, 512, 4);
  for (int64_t i = 0; i < q.rows(); ++i) q.row(i) += 0.7f * c.row(i * 9);
  NormalizeRows(q.data(), q.rows(), q.cols(), q.cols(), 1);
  SearchOptions o;
  o.k = 100;
  o.rerank = 10;
  o.exact = true;
  TopK exact = TopKInnerProduct(q, c, o);
  SearchOptions f = Fast();
  f.k = o.k;
  f.rerank = o.rerank;
  TopK fast = TopKInnerProduct(q, c, f);
  int64_t same_head = 0;
  for (int64_t i = 0; i < q.rows(); ++i) {
    same_head += fast.idx[i * o.k] == exact.idx[i * o.k];
    EXPECT_NEAR(fast.score[i * o.k], exact.score[i * o.k], 1e-5);  // the head is exact fp32
    for (int j = 0; j < o.k; ++j) {
      ASSERT_NEAR(fast.score[i * o.k + j], exact.score[i * o.k + j], 2e-3);
    }
  }
  EXPECT_EQ(same_head, q.rows());
}

// The int8 dot products are exact integers and the re-scoring sums in one fixed order, so every
// path returns the same candidates and scores as the portable kernels, bit for bit, including
// the int8 estimates of the tail (partial re-ranking).
TEST_P(Int8PathTest, SameCandidatesAndScoresAsPortableKernels) {
  Mat c = RandomUnitRows(1000, 2720 / 4 + 3, 21);  // width not a multiple of 4 or 8
  Mat q = RandomUnitRows(90, c.cols(), 22);
  for (int64_t i = 0; i < q.rows(); ++i) q.row(i) += 0.4f * c.row(i * 11);
  NormalizeRows(q.data(), q.rows(), q.cols(), q.cols(), 1);
  SearchOptions f = Fast();
  f.k = 60;
  f.rerank = 8;
  TopK got = TopKInnerProduct(q, c, f);
  f.kernel = KernelPath::kGeneric;
  TopK want = TopKInnerProduct(q, c, f);
  EXPECT_EQ(got.idx, want.idx);
  EXPECT_EQ(got.score, want.score);
}

INSTANTIATE_TEST_SUITE_P(Paths, Int8PathTest,
                         ::testing::Values(KernelPath::kAvx512, KernelPath::kAvx2,
                                           KernelPath::kGeneric),
                         [](const ::testing::TestParamInfo<KernelPath>& p) {
                           return std::string(KernelPathName(p.param));
                         });

}  // namespace
}  // namespace baton::tea

namespace baton::tea {
namespace {

// The subset search must equal a separate search over the gathered rows and columns.
void CheckSubsetEqualsSeparateSearch(bool exact, KernelPath path = DetectedKernelPath()) {
  Mat c = RandomUnitRows(1500, 256, 5);
  Mat q = RandomUnitRows(400, 256, 6);
  for (int64_t i = 0; i < q.rows(); ++i) q.row(i) += 0.6f * c.row(i * 3);
  NormalizeRows(q.data(), q.rows(), q.cols(), q.cols(), 1);
  SubsetSearch sub;
  for (int32_t i = 0; i < 400; i += 3) sub.rows.push_back(i);
  for (int32_t j = 0; j < 1500; j += 2) sub.cols.push_back(j);
  sub.k = 50;
  SearchOptions o;
  o.k = 80;
  o.exact = exact;
  o.kernel = path;
  o.rerank = 80;
  TopK full = TopKInnerProduct(q, c, o, nullptr, &sub);
  Mat qs(sub.rows.size(), q.cols()), cs(sub.cols.size(), c.cols());
  for (size_t i = 0; i < sub.rows.size(); ++i) qs.row(i) = q.row(sub.rows[i]);
  for (size_t j = 0; j < sub.cols.size(); ++j) cs.row(j) = c.row(sub.cols[j]);
  o.k = 50;
  o.exact = true;
  TopK separate = TopKInnerProduct(qs, cs, o);
  ASSERT_EQ(sub.result.rows, separate.rows);
  EXPECT_EQ(sub.result.idx, separate.idx);
  for (size_t j = 0; j < separate.score.size(); ++j) {
    ASSERT_NEAR(sub.result.score[j], separate.score[j], 1e-5);
  }
  EXPECT_EQ(full.rows, 400);
}

// A query without features ties at exactly 0 with every candidate; like the official flat search,
// the result is then the first k candidates in the order the subset lists them (faithful mode
// lists them in CPython set order, quirk Q5).
void CheckZeroQueryTakesFirstListedCandidates(bool exact, KernelPath path = DetectedKernelPath()) {
  Mat c = RandomUnitRows(1200, 256, 7);
  Mat q = RandomUnitRows(3, 256, 8);
  q.row(1).setZero();
  SubsetSearch sub;
  sub.rows = {0, 1, 2};
  for (int32_t j = 1199; j >= 0; j -= 2) sub.cols.push_back(j);  // a non-ascending list
  sub.k = 50;
  SearchOptions o;
  o.k = 60;
  o.exact = exact;
  o.kernel = path;
  TopK full = TopKInnerProduct(q, c, o, nullptr, &sub);
  std::vector<int32_t> got(full.idx.begin() + o.k, full.idx.begin() + 2 * o.k);
  std::sort(got.begin(), got.end());
  std::vector<int32_t> first(o.k);
  std::iota(first.begin(), first.end(), 0);
  EXPECT_EQ(got, first);  // full search: the lowest candidate rows
  got.assign(sub.result.idx.begin() + sub.k, sub.result.idx.begin() + 2 * sub.k);
  std::sort(got.begin(), got.end());
  first.resize(sub.k);
  EXPECT_EQ(got, first);  // subset: the first positions of sub.cols, not the lowest rows
  for (int j = 0; j < sub.k; ++j) EXPECT_EQ(sub.result.score[sub.k + j], 0.0f);
}

TEST(TopKTest, ZeroQueryTakesFirstListedCandidatesExactPath) {
  CheckZeroQueryTakesFirstListedCandidates(true);
}

class Int8SubsetPathTest : public Int8PathTest {};

TEST_P(Int8SubsetPathTest, ZeroQueryTakesFirstListedCandidates) {
  CheckZeroQueryTakesFirstListedCandidates(false, GetParam());
}

TEST(TopKTest, SubsetSearchEqualsSeparateSearchExactPath) { CheckSubsetEqualsSeparateSearch(true); }

TEST_P(Int8SubsetPathTest, SubsetSearchEqualsSeparateSearch) {
  CheckSubsetEqualsSeparateSearch(false, GetParam());
}

INSTANTIATE_TEST_SUITE_P(Paths, Int8SubsetPathTest,
                         ::testing::Values(KernelPath::kAvx512, KernelPath::kAvx2,
                                           KernelPath::kGeneric),
                         [](const ::testing::TestParamInfo<KernelPath>& p) {
                           return std::string(KernelPathName(p.param));
                         });

}  // namespace
}  // namespace baton::tea
