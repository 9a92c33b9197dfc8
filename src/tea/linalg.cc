#include "tea/linalg.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tea/multiversion.h"
#include "tea/parallel.h"

namespace baton::tea {
namespace {

TEA_ALWAYS_INLINE inline void SpMMRowsBody(const int64_t* outer, const int64_t* inner,
                                           const float* val, const float* x, int64_t ldx,
                                           int64_t cols, float* out, int64_t ldo, bool accumulate,
                                           int64_t r0, int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    float* o = out + i * ldo;
    if (!accumulate) std::memset(o, 0, sizeof(float) * cols);
    for (int64_t p = outer[i]; p < outer[i + 1]; ++p) {
      const float v = val[p];
      const float* xr = x + inner[p] * ldx;
      for (int64_t c = 0; c < cols; ++c) o[c] += v * xr[c];
    }
  }
}

TEA_ALWAYS_INLINE inline void NormalizeRowRangeBody(float* x, int64_t cols, int64_t ld, int64_t r0,
                                                    int64_t r1) {
  for (int64_t i = r0; i < r1; ++i) {
    float* r = x + i * ld;
    // Eight float partial sums, accumulated in double at the end: vectorisable and accurate
    // enough for a norm of a few thousand terms.
    float part[16] = {};
    int64_t c = 0;
    for (; c + 16 <= cols; c += 16) {
      for (int j = 0; j < 16; ++j) part[j] += r[c + j] * r[c + j];
    }
    double ss = 0;
    for (int j = 0; j < 16; ++j) ss += part[j];
    for (; c < cols; ++c) ss += static_cast<double>(r[c]) * r[c];
    if (ss < 1e-12) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(ss));
    for (c = 0; c < cols; ++c) r[c] *= inv;
  }
}

TEA_PER_PATH(SpMMRows,
             (const int64_t* outer, const int64_t* inner, const float* val, const float* x,
              int64_t ldx, int64_t cols, float* out, int64_t ldo, bool accumulate, int64_t r0,
              int64_t r1),
             (outer, inner, val, x, ldx, cols, out, ldo, accumulate, r0, r1))
TEA_PER_PATH(NormalizeRowRange, (float* x, int64_t cols, int64_t ld, int64_t r0, int64_t r1),
             (x, cols, ld, r0, r1))

}  // namespace

void SpMM(const SpMat& a, const float* x, int64_t ldx, int64_t cols, float* out, int64_t ldo,
          bool accumulate, int threads, KernelPath path) {
  path = std::min(path, DetectedKernelPath());
  const int64_t* outer = a.outerIndexPtr();
  const int64_t* inner = a.innerIndexPtr();
  const float* val = a.valuePtr();
  ParallelFor(a.rows(), 256, threads, [&](int64_t r0, int64_t r1) {
    TEA_DISPATCH(path, SpMMRows, (outer, inner, val, x, ldx, cols, out, ldo, accumulate, r0, r1));
  });
}

void NormalizeRows(float* x, int64_t rows, int64_t cols, int64_t ld, int threads, KernelPath path) {
  path = std::min(path, DetectedKernelPath());
  ParallelFor(rows, 512, threads, [&](int64_t r0, int64_t r1) {
    TEA_DISPATCH(path, NormalizeRowRange, (x, cols, ld, r0, r1));
  });
}

void Gemm(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
          int64_t m, int64_t n, int64_t k, bool accumulate, int threads) {
  if (m == 0 || n == 0) return;
  openblas_set_num_threads(threads);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(m), static_cast<int>(n),
              static_cast<int>(k), 1.0f, a, static_cast<int>(lda), b, static_cast<int>(ldb),
              accumulate ? 1.0f : 0.0f, c, static_cast<int>(ldc));
}

}  // namespace baton::tea
