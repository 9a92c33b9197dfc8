// The bf16 projection GEMM in portable C++ (tests, and CPUs without AVX2 when asked for).
#include <cmath>
#include <vector>

#include "tea/gemm_bf16_kernels.h"
#include "tea/parallel.h"

namespace baton::tea::bf16 {

void GemmGeneric(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                 int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows,
                 bool accumulate) {
  const int64_t k2 = (k + 1) / 2;
  // B rounded and transposed, padded to an even inner size.
  std::vector<float> bt(n * k2 * 2, 0.0f);
  for (int64_t r = 0; r < k; ++r) {
    for (int64_t col = 0; col < n; ++col) bt[col * k2 * 2 + r] = RoundToBf16(b[r * ldb + col]);
  }
  ParallelFor(m, 16, threads, [&](int64_t r0, int64_t r1) {
    std::vector<float> ar(k2 * 2, 0.0f);
    for (int64_t i = r0; i < r1; ++i) {
      for (int64_t j = 0; j < k; ++j) ar[j] = RoundToBf16(a[i * lda + j]);
      float* crow = c + (c_rows ? c_rows[i] : i) * ldc;
      for (int64_t col = 0; col < n; ++col) {
        const float* bc = bt.data() + col * k2 * 2;
        float acc = 0.0f;
        for (int64_t p = 0; p < k2; ++p) {
          acc = std::fma(ar[2 * p + 1], bc[2 * p + 1], acc);
          acc = std::fma(ar[2 * p], bc[2 * p], acc);
        }
        crow[col] = accumulate ? crow[col] + acc : acc;
      }
    }
  });
}

}  // namespace baton::tea::bf16
