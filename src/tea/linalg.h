// Dense and sparse kernels the propagation and projection steps are built from. Matrices are
// row-major float with an explicit leading dimension so that column blocks can be addressed in
// place.
#pragma once

#include <cstdint>

#include "tea/eigen.h"

// Hot element-wise loops are compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the
// best one for the running CPU (GCC function multi-versioning).
#define TEA_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

namespace baton::tea {

// out[i, :cols] (+)= sum_j a[i, j] * x[j, :cols], rows of `a` split across threads.
void SpMM(const SpMat& a, const float* x, int64_t ldx, int64_t cols, float* out, int64_t ldo,
          bool accumulate, int threads);

// Scales each row to unit L2 norm; rows with squared norm below 1e-12 are left as they are (zero
// rows stay zero), matching the official l2_normalize(epsilon=1e-12) on non-degenerate rows.
void NormalizeRows(float* x, int64_t rows, int64_t cols, int64_t ld, int threads);

// c (m x n) (+)= a (m x k) * b (k x n), row-major; BLAS sgemm with `threads` BLAS threads.
void Gemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          int64_t m, int64_t n, int64_t k, bool accumulate, int threads);

}  // namespace baton::tea
