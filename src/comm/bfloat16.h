// bfloat16 (DataType::kBFloat16): the upper 16 bits of an IEEE-754 float32, i.e. float32's sign
// and 8-bit exponent (same range) with 7 stored significand bits. Buffers hold the raw bit patterns
// as uint16_t; torch's at::kBFloat16 and XLA's bf16 use the same layout.
//
// Reductions widen to float, operate, and round back to nearest-even once per reduction step (as
// NCCL does for bf16): a ring allreduce rounds after each of its n-1 additions, so the result may
// differ from a float32 sum rounded once by a few units in the last place.
#pragma once

#include <bit>
#include <cstdint>

namespace baton::comm {

// Exact: every bf16 value is a float.
inline float BFloat16ToFloat(uint16_t bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16);
}

// Rounds to nearest, ties to even. Values beyond bf16's largest finite (about 3.39e38) round to
// infinity like any IEEE rounding; NaN stays NaN (made quiet, sign kept) even when its payload
// lies only in the discarded bits. Branch-free, so loops over it vectorise.
inline uint16_t FloatToBFloat16(float value) {
  const uint32_t u = std::bit_cast<uint32_t>(value);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t quiet_nan = (u >> 16) | 0x0040u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet_nan : rounded);
}

}  // namespace baton::comm
