#include "tea/gemm_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "tea/gemm_bf16_kernels.h"
#include "tea/parallel.h"

// As in topk_int8_avx512.cc, only the kernels carry the AVX-512 target attribute.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TEA_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

namespace baton::tea {
namespace {

constexpr int kMr = 8;         // rows of A per micro-kernel
constexpr int kNb = 3;         // 16-column vectors per micro-kernel
constexpr int kNr = 16 * kNb;  // columns of B per packed panel
constexpr int kMc = 96;        // rows of A per task (their bf16 rows stay in L1/L2)

using bf16::ToBf16;

// B packed per panel of kNr columns: for every pair of rows (k, k+1), 16 lanes x 2 bf16 per
// vector, so one 64-byte load feeds one vdpbf16ps.
std::vector<uint16_t> PackB(const float* b, int64_t ldb, int64_t k, int64_t n, int64_t panels,
                            int64_t k2) {
  std::vector<uint16_t> p(panels * k2 * kNr * 2, 0);
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t col = 0; col < n; ++col) {
      const int64_t panel = col / kNr, lane = col % kNr;
      p[((panel * k2 + r / 2) * kNr + lane) * 2 + (r % 2)] = ToBf16(b[r * ldb + col]);
    }
  }
  return p;
}

// crow[r] is where row r's kNr outputs go (only the first valid_cols are written); with
// `accumulate` they are added to what is there.
TEA_AVX512_BF16 void MicroKernel(const uint16_t* a, int64_t k2, const uint16_t* panel,
                                 float* const* crow, int valid_cols, bool accumulate) {
  __m512 acc[kMr][kNb];
  // Fully unrolled (pragmas) so that the kMr x kNb accumulators live in registers: at -O2 GCC
  // kept them in a stack array, a store-to-load round trip per multiply-add (3-4x slower).
#pragma GCC unroll kMr
  for (int r = 0; r < kMr; ++r) {
#pragma GCC unroll kNb
    for (int b = 0; b < kNb; ++b) acc[r][b] = _mm512_setzero_ps();
  }
  const int64_t lda = k2 * 2;
  for (int64_t kk = 0; kk < k2; ++kk) {
    __m512bh bv[kNb];
#pragma GCC unroll kNb
    for (int b = 0; b < kNb; ++b) {
      bv[b] = (__m512bh)_mm512_loadu_si512(panel + (kk * kNr + b * 16) * 2);
    }
#pragma GCC unroll kMr
    for (int r = 0; r < kMr; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + kk * 2, 4);
      const __m512bh av = (__m512bh)_mm512_set1_epi32(word);
#pragma GCC unroll kNb
      for (int b = 0; b < kNb; ++b) acc[r][b] = _mm512_dpbf16_ps(acc[r][b], av, bv[b]);
    }
  }
#pragma GCC unroll kNb
  for (int b = 0; b < kNb; ++b) {
    const int left = std::clamp(valid_cols - b * 16, 0, 16);
    const __mmask16 mask = static_cast<__mmask16>((1u << left) - 1u);
#pragma GCC unroll kMr
    for (int r = 0; r < kMr; ++r) {
      float* dst = crow[r] + b * 16;
      __m512 v = acc[r][b];
      if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, dst));
      _mm512_mask_storeu_ps(dst, mask, v);
    }
  }
}

}  // namespace

void GemmBf16(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows, bool accumulate,
              KernelPath path) {
  if (m == 0 || n == 0) return;
  switch (std::min(path, DetectedKernelPath())) {
    case KernelPath::kGeneric:
      return bf16::GemmGeneric(a, lda, b, ldb, c, ldc, m, n, k, threads, c_rows, accumulate);
    case KernelPath::kAvx2:
      return bf16::GemmAvx2(a, lda, b, ldb, c, ldc, m, n, k, threads, c_rows, accumulate);
    case KernelPath::kAvx512:
      break;
  }
  const int64_t k2 = (k + 1) / 2;
  const int64_t panels = (n + kNr - 1) / kNr;
  const std::vector<uint16_t> pb = PackB(b, ldb, k, n, panels, k2);
  ParallelFor(m, kMc, threads, [&](int64_t r0, int64_t r1) {
    // This task's rows of A as bf16, padded to whole micro-kernels with zero rows.
    const int64_t rows = (r1 - r0 + kMr - 1) / kMr * kMr;
    std::vector<uint16_t> pa(rows * k2 * 2, 0);
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < k; ++j) pa[(i - r0) * k2 * 2 + j] = ToBf16(a[i * lda + j]);
    }
    std::vector<float> sink(kNr);  // padding rows of the last block write here
    float* crow[kMr];
    for (int64_t p = 0; p < panels; ++p) {
      const int valid = static_cast<int>(std::min<int64_t>(kNr, n - p * kNr));
      for (int64_t i = 0; i < rows; i += kMr) {
        for (int r = 0; r < kMr; ++r) {
          const int64_t row = r0 + i + r;
          crow[r] = row < r1 ? c + (c_rows ? c_rows[row] : row) * ldc + p * kNr : sink.data();
        }
        MicroKernel(pa.data() + i * k2 * 2, k2, pb.data() + p * k2 * kNr * 2, crow, valid,
                    accumulate);
      }
    }
  });
}

}  // namespace baton::tea
