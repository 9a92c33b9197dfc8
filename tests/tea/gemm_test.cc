// The bf16 projection GEMM against fp32 BLAS.
#include <gtest/gtest.h>

#include "tea/gemm_bf16.h"
#include "tea/linalg.h"
#include "tea/random.h"

namespace baton::tea {
namespace {

TEST(GemmBf16Test, MatchesFp32WithinBf16RoundingAcrossEdgeShapes) {
  if (!Bf16GemmSupported()) GTEST_SKIP() << "CPU without AVX512_BF16: projections use fp32 BLAS";
  // Odd sizes exercise the partial row block, the partial column panel and an odd inner size.
  const int64_t m = 37, n = 101, k = 63;
  Mat a(m, k), b(k, n), want(m, n), got(m, n), bound(m, n);
  FillGaussian(a.data(), a.size(), 11, 1);
  FillGaussian(b.data(), b.size(), 12, 1);
  Gemm(a.data(), k, b.data(), n, want.data(), n, m, n, k, false, 1);
  Mat abs_a = a.cwiseAbs(), abs_b = b.cwiseAbs();
  Gemm(abs_a.data(), k, abs_b.data(), n, bound.data(), n, m, n, k, false, 1);
  got.setConstant(-7.0f);
  GemmBf16(a.data(), k, b.data(), n, got.data(), n, m, n, k, 2);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      // Rounding both factors to bf16 moves each product by at most ~2^-8 of |a||b|.
      ASSERT_NEAR(got(i, j), want(i, j), bound(i, j) * 0x1p-8 + 1e-5) << i << "," << j;
    }
  }
  EXPECT_GT((got - want).norm() / want.norm(), 0.0);  // really bf16, not a silent fp32 path
  EXPECT_LT((got - want).norm() / want.norm(), 5e-3);
}

}  // namespace
}  // namespace baton::tea

namespace baton::tea {
namespace {

TEST(GemmBf16Test, ScatterAccumulateAddsIntoTheNamedRows) {
  if (!Bf16GemmSupported()) GTEST_SKIP() << "CPU without AVX512_BF16";
  const int64_t m = 3, n = 50, k = 8;
  Mat a = Mat::Ones(m, k), b = Mat::Ones(k, n), c = Mat::Constant(6, n, 1.0f);
  const std::vector<int64_t> rows = {4, 0, 2};
  GemmBf16(a.data(), k, b.data(), n, c.data(), n, m, n, k, 1, rows.data(), true);
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(c(4, j), 9.0f);
    EXPECT_EQ(c(0, j), 9.0f);
    EXPECT_EQ(c(2, j), 9.0f);
    EXPECT_EQ(c(1, j), 1.0f);
    EXPECT_EQ(c(3, j), 1.0f);
    EXPECT_EQ(c(5, j), 1.0f);
  }
}

}  // namespace
}  // namespace baton::tea
