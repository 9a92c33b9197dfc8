// The bf16 projection GEMM for AVX2 + FMA: A and B rounded to bf16, held as fp32 (a bf16 value is
// the top half of an fp32), multiplied with vfmadd in 6 x 16 register tiles. Only the kernel
// carries the AVX2 target attribute.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "tea/gemm_bf16_kernels.h"
#include "tea/memory.h"
#include "tea/parallel.h"

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TEA_AVX2 __attribute__((target("avx2,fma")))

namespace baton::tea::bf16 {
namespace {

constexpr int kMr = 6;   // rows of A per tile
constexpr int kNr = 16;  // columns of B per packed panel (two 8-lane vectors)
constexpr int kMc = 96;  // rows of A per task

// acc += a * b (one rounding), in place: with _mm256_fmadd_ps GCC 12 copied the 12 accumulators
// between registers every step (42 vmovaps in the loop); see topk_int8_avx512.cc.
TEA_AVX2 inline void FmaInto(__m256* acc, __m256 a, __m256 b) {
  asm("vfmadd231ps %2, %1, %0" : "+x"(*acc) : "x"(a), "x"(b));
}

// crow[r] receives the tile's row r (valid_cols of kNr), added to it with `accumulate`.
// `a` is kMr rows of kp (even) rounded values; `panel` is kp rows of kNr.
TEA_AVX2 void Tile(const float* a, int64_t kp, const float* panel, float* const* crow,
                   int valid_cols, bool accumulate) {
  __m256 acc[kMr][2];
#pragma GCC unroll kMr
  for (int r = 0; r < kMr; ++r) {
    acc[r][0] = _mm256_setzero_ps();
    acc[r][1] = _mm256_setzero_ps();
  }
  for (int64_t p = 0; p < kp; p += 2) {
    // Odd inner index first, then even: the order vdpbf16ps adds them in.
#pragma GCC unroll 2
    for (int64_t kk = p + 1; kk >= p; --kk) {
      const __m256 b0 = _mm256_loadu_ps(panel + kk * kNr);
      const __m256 b1 = _mm256_loadu_ps(panel + kk * kNr + 8);
#pragma GCC unroll kMr
      for (int r = 0; r < kMr; ++r) {
        const __m256 av = _mm256_broadcast_ss(a + r * kp + kk);
        FmaInto(&acc[r][0], av, b0);
        FmaInto(&acc[r][1], av, b1);
      }
    }
  }
#pragma GCC unroll kMr
  for (int r = 0; r < kMr; ++r) {
    float* dst = crow[r];
    if (valid_cols == kNr) {
      __m256 v0 = acc[r][0], v1 = acc[r][1];
      if (accumulate) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(dst));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(dst + 8));
      }
      _mm256_storeu_ps(dst, v0);
      _mm256_storeu_ps(dst + 8, v1);
    } else {
      float tmp[kNr];
      _mm256_storeu_ps(tmp, acc[r][0]);
      _mm256_storeu_ps(tmp + 8, acc[r][1]);
      for (int j = 0; j < valid_cols; ++j) dst[j] = accumulate ? dst[j] + tmp[j] : tmp[j];
    }
  }
}

}  // namespace

void GemmAvx2(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows,
              bool accumulate) {
  const int64_t kp = (k + 1) / 2 * 2;  // inner size padded to whole pairs
  const int64_t panels = (n + kNr - 1) / kNr;
  std::vector<float> pb;
  ResizeLarge(&pb, panels * kp * kNr);
  std::fill(pb.begin(), pb.end(), 0.0f);
  ParallelFor(k, 64, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t col = 0; col < n; ++col) {
        pb[((col / kNr) * kp + r) * kNr + col % kNr] = RoundToBf16(b[r * ldb + col]);
      }
    }
  });
  ParallelFor(m, kMc, threads, [&](int64_t r0, int64_t r1) {
    const int64_t rows = (r1 - r0 + kMr - 1) / kMr * kMr;
    std::vector<float> pa(rows * kp, 0.0f);  // this task's rows, rounded, zero-padded
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < k; ++j) pa[(i - r0) * kp + j] = RoundToBf16(a[i * lda + j]);
    }
    std::vector<float> sink(kNr);  // padding rows of the last tile write here
    float* crow[kMr];
    for (int64_t p = 0; p < panels; ++p) {
      const int valid = static_cast<int>(std::min<int64_t>(kNr, n - p * kNr));
      for (int64_t i = 0; i < rows; i += kMr) {
        for (int r = 0; r < kMr; ++r) {
          const int64_t row = r0 + i + r;
          crow[r] = row < r1 ? c + (c_rows ? c_rows[row] : row) * ldc + p * kNr : sink.data();
        }
        Tile(pa.data() + i * kp, kp, pb.data() + p * kp * kNr, crow, valid, accumulate);
      }
    }
  });
}

}  // namespace baton::tea::bf16
