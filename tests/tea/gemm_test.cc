// The bf16 projection GEMM on every kernel path this CPU can run, against fp32 BLAS.
#include <gtest/gtest.h>

#include "tea/gemm_bf16.h"
#include "tea/linalg.h"
#include "tea/random.h"

namespace baton::tea {
namespace {

class GemmBf16PathTest : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!KernelPathSupported(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << KernelPathName(GetParam())
                   << " kernels; it has " << CpuFeatureList();
    }
  }
};

TEST_P(GemmBf16PathTest, MatchesFp32WithinBf16RoundingAcrossEdgeShapes) {
  // Odd sizes exercise the partial row block, the partial column panel and an odd inner size.
  const int64_t m = 37, n = 101, k = 63;
  Mat a(m, k), b(k, n), want(m, n), got(m, n), bound(m, n);
  FillGaussian(a.data(), a.size(), 11, 1);
  FillGaussian(b.data(), b.size(), 12, 1);
  Gemm(a.data(), k, b.data(), n, want.data(), n, m, n, k, false, 1);
  Mat abs_a = a.cwiseAbs(), abs_b = b.cwiseAbs();
  Gemm(abs_a.data(), k, abs_b.data(), n, bound.data(), n, m, n, k, false, 1);
  got.setConstant(-7.0f);
  GemmBf16(a.data(), k, b.data(), n, got.data(), n, m, n, k, 2, nullptr, false, GetParam());
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      // Rounding both factors to bf16 moves each product by at most ~2^-8 of |a||b|.
      ASSERT_NEAR(got(i, j), want(i, j), bound(i, j) * 0x1p-8 + 1e-5) << i << "," << j;
    }
  }
  EXPECT_GT((got - want).norm() / want.norm(), 0.0);  // really bf16, not a silent fp32 path
  EXPECT_LT((got - want).norm() / want.norm(), 5e-3);
}

TEST_P(GemmBf16PathTest, ScatterAccumulateAddsIntoTheNamedRows) {
  const int64_t m = 3, n = 50, k = 8;
  Mat a = Mat::Ones(m, k), b = Mat::Ones(k, n), c = Mat::Constant(6, n, 1.0f);
  const std::vector<int64_t> rows = {4, 0, 2};
  GemmBf16(a.data(), k, b.data(), n, c.data(), n, m, n, k, 1, rows.data(), true, GetParam());
  for (int64_t j = 0; j < n; ++j) {
    EXPECT_EQ(c(4, j), 9.0f);
    EXPECT_EQ(c(0, j), 9.0f);
    EXPECT_EQ(c(2, j), 9.0f);
    EXPECT_EQ(c(1, j), 1.0f);
    EXPECT_EQ(c(3, j), 1.0f);
    EXPECT_EQ(c(5, j), 1.0f);
  }
}

// The avx2 and generic kernels add each pair of inner indices as vdpbf16ps is specified to (odd
// index first, each an fp32 fused multiply-add of exact bf16 products), so every path agrees bit
// for bit: a projection does not depend on the CPU it ran on.
TEST_P(GemmBf16PathTest, SameBitsAsPortableKernel) {
  const int64_t m = 29, n = 70, k = 301;
  Mat a(m, k), b(k, n), got(m, n), want(m, n);
  FillGaussian(a.data(), a.size(), 13, 1);
  FillGaussian(b.data(), b.size(), 14, 1);
  GemmBf16(a.data(), k, b.data(), n, got.data(), n, m, n, k, 2, nullptr, false, GetParam());
  GemmBf16(a.data(), k, b.data(), n, want.data(), n, m, n, k, 2, nullptr, false,
           KernelPath::kGeneric);
  EXPECT_TRUE(got == want) << "max difference " << (got - want).cwiseAbs().maxCoeff();
}

INSTANTIATE_TEST_SUITE_P(Paths, GemmBf16PathTest,
                         ::testing::Values(KernelPath::kAvx512, KernelPath::kAvx2,
                                           KernelPath::kGeneric),
                         [](const ::testing::TestParamInfo<KernelPath>& p) {
                           return std::string(KernelPathName(p.param));
                         });

}  // namespace
}  // namespace baton::tea
