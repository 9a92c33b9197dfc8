// The int8 search kernels for AVX2 (+FMA), for CPUs without VNNI: an int8 product-sum is
// vpmaddubsw (u8 x s8 -> pairs summed in int16) then vpmaddwd with ones (-> int32). vpmaddubsw
// saturates when a pair sum exceeds 32767, which 255 x 127 x 2 would; so the unsigned operand is
// |q| and the candidate's sign is flipped where q is negative (vpsignb): |q| * sign(q) c = q c,
// with every pair sum within 2 x 127 x 127 = 32258. The result is the exact int32 dot product,
// as vpdpbusd gives it. Only these functions carry the AVX2 target attribute.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tea/topk_int8_kernels.h"

#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TEA_AVX2 __attribute__((target("avx2,fma")))

namespace baton::tea::int8 {
namespace {

constexpr int kRows = 4;  // query rows per register tile
constexpr int kVecs = 2;  // 8-candidate vectors per register tile: 4 x 2 accumulators

TEA_AVX2 float QuantizeRow(const float* x, int64_t d, int8_t* out) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 mx = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= d; j += 8)
    mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + j), abs_mask));
  float lanes[8];
  _mm256_storeu_ps(lanes, mx);
  float m = 0.0f;
  for (float v : lanes) m = std::max(m, v);
  for (int64_t t = j; t < d; ++t) m = std::max(m, std::fabs(x[t]));
  const float s = m > 0 ? 127.0f / m : 0.0f;
  const __m256 sv = _mm256_set1_ps(s);
  for (j = 0; j + 8 <= d; j += 8) {
    const __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + j), sv));
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + j), _mm_packs_epi16(w16, w16));
  }
  for (; j < d; ++j) out[j] = static_cast<int8_t>(std::nearbyint(x[j] * s));
  return m;
}

// acc += t, in place. Inline assembly for the reason given in topk_int8_avx512.cc: with the
// intrinsic GCC 12 kept the accumulators in a stack array and copied registers every step
// (spills measured in the disassembly of this kernel).
TEA_AVX2 inline void AddInto(__m256i* acc, __m256i t) {
  asm("vpaddd %1, %0, %0" : "+x"(*acc) : "x"(t));
}

// One kRows x (8 * kVecs) tile of a panel: rows `a` (int8), candidates from `col` on.
TEA_AVX2 inline void Tile(const int8_t* a, int64_t lda, int64_t d4, const int8_t* panel, int col,
                          const float* inv_scale, float* out, int64_t ldo) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[kRows][kVecs];
#pragma GCC unroll kRows
  for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll kVecs
    for (int b = 0; b < kVecs; ++b) acc[r][b] = _mm256_setzero_si256();
  }
  for (int64_t k = 0; k < d4; ++k) {
    __m256i bv[kVecs];
#pragma GCC unroll kVecs
    for (int b = 0; b < kVecs; ++b) {
      bv[b] =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(panel + (k * kNr + col + b * 8) * 4));
    }
#pragma GCC unroll kRows
    for (int r = 0; r < kRows; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + k * 4, 4);
      const __m256i av = _mm256_set1_epi32(word);
      const __m256i abs_a = _mm256_abs_epi8(av);
#pragma GCC unroll kVecs
      for (int b = 0; b < kVecs; ++b) {
        const __m256i pairs = _mm256_maddubs_epi16(abs_a, _mm256_sign_epi8(bv[b], av));
        AddInto(&acc[r][b], _mm256_madd_epi16(pairs, ones));
      }
    }
  }
#pragma GCC unroll kVecs
  for (int b = 0; b < kVecs; ++b) {
    const __m256 sc = _mm256_loadu_ps(inv_scale + col + b * 8);
#pragma GCC unroll kRows
    for (int r = 0; r < kRows; ++r) {
      _mm256_storeu_ps(out + r * ldo + col + b * 8,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(acc[r][b]), sc));
    }
  }
}

// Queries are int8 (Kernels::unsigned_queries == false), so `offset` is not needed.
TEA_AVX2 void MicroKernel(const uint8_t* a, int64_t d4, const int8_t* panel, const float* inv_scale,
                          const int32_t* /*offset*/, float* out, int64_t ldo) {
  const int8_t* q = reinterpret_cast<const int8_t*>(a);
  const int64_t lda = d4 * 4;
  for (int r = 0; r < kMr; r += kRows) {
    for (int col = 0; col < kNr; col += 8 * kVecs) {
      Tile(q + r * lda, lda, d4, panel, col, inv_scale, out + r * ldo, ldo);
    }
  }
}

TEA_AVX2 int64_t IndicesAtLeast(const float* s, int64_t n, float thresh, int32_t* out) {
  int64_t count = 0, i = 0;
  const __m256 t = _mm256_set1_ps(thresh);
  for (; i + 8 <= n; i += 8) {
    unsigned keep = static_cast<unsigned>(
        _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i), t, _CMP_GE_OQ)));
    while (keep) {
      out[count++] = static_cast<int32_t>(i + __builtin_ctz(keep));
      keep &= keep - 1;
    }
  }
  for (; i < n; ++i) {
    if (s[i] >= thresh) out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

// The AVX-512 kernel's two 16-lane accumulators as four 8-lane ones, then its reduction tree.
TEA_AVX2 float Dot(const float* a, const float* b, int64_t d) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                   _mm256_setzero_ps()};
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
#pragma GCC unroll 4
    for (int l = 0; l < 4; ++l) {
      acc[l] =
          _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8 * l), _mm256_loadu_ps(b + j + 8 * l), acc[l]);
    }
  }
  float v[16];
  _mm256_storeu_ps(v, _mm256_add_ps(acc[0], acc[2]));
  _mm256_storeu_ps(v + 8, _mm256_add_ps(acc[1], acc[3]));
  float s = ReduceAdd16(v);
  for (; j < d; ++j) s = std::fma(a[j], b[j], s);  // as the SIMD kernels contract it
  return s;
}

}  // namespace

const Kernels& Avx2Kernels() {
  static const Kernels k = {false, QuantizeRow, MicroKernel, IndicesAtLeast, Dot};
  return k;
}

}  // namespace baton::tea::int8
