// The bf16 projection GEMM per kernel path (cpu.h). Internal to gemm_bf16.cc; the arguments are
// those of GemmBf16 (gemm_bf16.h).
#pragma once

#include <cstdint>
#include <cstring>

namespace baton::tea::bf16 {

// fp32 -> bf16 bits, round to nearest even (NaN-free inputs).
inline uint16_t ToBf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

// x rounded to bf16 precision, as an fp32 value.
inline float RoundToBf16(float x) {
  const uint32_t u = static_cast<uint32_t>(ToBf16(x)) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// AVX2 + FMA and portable versions. Both round A and B to bf16 and accumulate each pair of inner
// indices as vdpbf16ps is specified to (odd index first, then even, each an fp32 fused
// multiply-add of exact bf16 products), so they compute the same sums as each other.
void GemmAvx2(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows, bool accumulate);
void GemmGeneric(const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                 int64_t m, int64_t n, int64_t k, int threads, const int64_t* c_rows,
                 bool accumulate);

}  // namespace baton::tea::bf16
