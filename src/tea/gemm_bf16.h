// C = A * B with A and B rounded to bfloat16 and fp32 accumulation (AVX-512 BF16 dot products),
// for the random projections: twice the multiply rate of fp32 on CPUs with AVX512_BF16. Rounding
// a Gaussian projection matrix and unit-norm features to bf16 (relative error <= 2^-9 per entry)
// perturbs each projected value far less than the projection's own randomness.
#pragma once

#include <cstdint>

namespace baton::tea {

// Whether the CPU has AVX512_BF16 (and AVX-512 F/BW).
bool Bf16GemmSupported();

// c (m x n, ldc) = a (m x k, lda) * b (k x n, ldb); all row-major fp32 in memory. Requires
// Bf16GemmSupported(). With c_rows, row i of the product goes to row c_rows[i] of c (rows must be
// distinct); with accumulate, it is added to c instead of overwriting it.
void GemmBf16(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows = nullptr,
              bool accumulate = false);

}  // namespace baton::tea
