// The int8 search's ISA-specific kernels, one set per kernel path (cpu.h). Internal to
// topk_int8.cc. Every set computes the same numbers: the int8 dot products are exact integers and
// the fp32 dot product sums in one fixed order (that of the AVX-512 kernel), so the search returns
// the same candidates and scores on every path.
#pragma once

#include <cstdint>

#include "tea/cpu.h"

namespace baton::tea::int8 {

constexpr int kMr = 8;   // query rows per micro-kernel call
constexpr int kNr = 48;  // candidates per packed panel

// Candidate panels: kNr rows quantised to int8; for every 4 consecutive dimensions, kNr lanes x
// 4 bytes, so one 64-byte load feeds 16 lanes of a 4-byte dot product.
struct Kernels {
  // Queries as uint8 (int8 + 128, undone by the panel's `offset`) or as int8.
  bool unsigned_queries = false;
  // Quantises x[0..d) to int8 with scale 127 / max|x| (round to nearest even); returns max|x|.
  float (*quantize_row)(const float* x, int64_t d, int8_t* out) = nullptr;
  // out[r * ldo + c] = int8 dot(query row r, candidate c) * inv_scale[c] for r < kMr, c < kNr.
  // `a` holds kMr rows of d4 * 4 bytes; `offset` is 128 * the candidate's byte sum.
  void (*micro_kernel)(const uint8_t* a, int64_t d4, const int8_t* panel, const float* inv_scale,
                       const int32_t* offset, float* out, int64_t ldo) = nullptr;
  // Writes the indices i with s[i] >= thresh to out, ascending; returns how many.
  int64_t (*indices_at_least)(const float* s, int64_t n, float thresh, int32_t* out) = nullptr;
  // fp32 dot product, summed in the AVX-512 kernel's order (32 lanes, then its reduction tree).
  float (*dot)(const float* a, const float* b, int64_t d) = nullptr;
};

const Kernels& Avx512Kernels();
const Kernels& Avx2Kernels();
const Kernels& GenericKernels();

inline const Kernels& KernelsFor(KernelPath p) {
  switch (p) {
    case KernelPath::kAvx512:
      return Avx512Kernels();
    case KernelPath::kAvx2:
      return Avx2Kernels();
    case KernelPath::kGeneric:
      break;
  }
  return GenericKernels();
}

// The reduction tree of GCC's _mm512_reduce_add_ps over 16 lane sums v[0..16), written out so
// the AVX2 and generic kernels add in the same order.
inline float ReduceAdd16(const float* v) {
  float t3[8], t6[4];
  for (int i = 0; i < 8; ++i) t3[i] = v[8 + i] + v[i];
  for (int i = 0; i < 4; ++i) t6[i] = t3[4 + i] + t3[i];
  const float t8_0 = t6[0] + t6[2], t8_1 = t6[1] + t6[3];
  return t8_0 + t8_1;
}

}  // namespace baton::tea::int8
