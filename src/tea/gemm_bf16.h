// C = A * B with A and B rounded to bfloat16 and fp32 accumulation, for the random projections.
// Rounding a Gaussian projection matrix and unit-norm features to bf16 (relative error <= 2^-9 per
// entry) perturbs each projected value far less than the projection's own randomness.
//
// Kernel paths (cpu.h): avx512 uses AVX512_BF16 dot products (vdpbf16ps, twice the multiply rate
// of fp32); avx2 holds the bf16 values as fp32 and multiplies with FMA in the order vdpbf16ps is
// specified to add (its speed is that of fp32, its result that of bf16 inputs); generic is the
// same arithmetic in portable C++.
#pragma once

#include <cstdint>

#include "tea/cpu.h"

namespace baton::tea {

// c (m x n, ldc) = a (m x k, lda) * b (k x n, ldb); all row-major fp32 in memory. Runs the kernels
// `path` to be one the CPU supports (a path it lacks is lowered to the best it has). With c_rows,
// row i of the product goes to row c_rows[i] of c (rows must be distinct); with accumulate, it is
// added to c instead of overwriting it.
void GemmBf16(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows = nullptr,
              bool accumulate = false, KernelPath path = DetectedKernelPath());

}  // namespace baton::tea
