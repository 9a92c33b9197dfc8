// Dense and sparse kernels the propagation and projection steps are built from. Matrices are
// row-major float with an explicit leading dimension so that column blocks can be addressed in
// place.
#pragma once

#include <cstdint>

#include "tea/cpu.h"
#include "tea/eigen.h"

namespace baton::tea {

// The element-wise kernels run the loops compiled for `path` (multiversion.h; same bits on every
// path, a path the CPU lacks is lowered to the best it has).

// out[i, :cols] (+)= sum_j a[i, j] * x[j, :cols], rows of `a` split across threads.
void SpMM(const SpMat& a, const float* x, int64_t ldx, int64_t cols, float* out, int64_t ldo,
          bool accumulate, int threads, KernelPath path = DetectedKernelPath());

// Scales each row to unit L2 norm; rows with squared norm below 1e-12 are left as they are (zero
// rows stay zero), matching the official l2_normalize(epsilon=1e-12) on non-degenerate rows.
void NormalizeRows(float* x, int64_t rows, int64_t cols, int64_t ld, int threads,
                   KernelPath path = DetectedKernelPath());

// c (m x n) (+)= a (m x k) * b (k x n), row-major; BLAS sgemm with `threads` BLAS threads.
void Gemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          int64_t m, int64_t n, int64_t k, bool accumulate, int threads);

}  // namespace baton::tea
