// The int8 search kernels for AVX-512 VNNI (vpdpbusd: 64 byte products per instruction).
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tea/topk_int8_kernels.h"

// Only the kernels carry the AVX-512 target attribute (not the whole file), so no inline library
// code compiled for AVX-512 can leak into other translation units; the dispatch (cpu.h) calls
// them only on CPUs that have AVX-512. GCC 12 reports false "uninitialized" warnings inside its
// own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TEA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

namespace baton::tea::int8 {
namespace {

constexpr int kNb = kNr / 16;  // 16-candidate vectors per micro-kernel

TEA_AVX512 float QuantizeRow(const float* x, int64_t d, int8_t* out) {
  __m512 mx = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 16 <= d; j += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
  float m = _mm512_reduce_max_ps(mx);
  for (int64_t t = j; t < d; ++t) m = std::max(m, std::fabs(x[t]));
  const float s = m > 0 ? 127.0f / m : 0.0f;
  const __m512 sv = _mm512_set1_ps(s);
  for (j = 0; j + 16 <= d; j += 16) {
    const __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + j), sv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm512_cvtsepi32_epi8(v));
  }
  for (; j < d; ++j) out[j] = static_cast<int8_t>(std::nearbyint(x[j] * s));
  return m;
}

// acc += dot products of the 4-byte groups of u8 `a` and s8 `b` (vpdpbusd), updating the register
// in place. Written as inline assembly because GCC 12 compiles the _mm512_dpbusd_epi32 intrinsic
// with a register copy per call, which in a 24-accumulator kernel spills to the stack and ran the
// search ~1.6x slower.
TEA_AVX512 inline void DotBytesInto(__m512i* acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(a), "v"(b));
}

// Queries are u8 (int8 + 128); `offset` removes the shift.
TEA_AVX512 void MicroKernel(const uint8_t* a, int64_t d4, const int8_t* panel,
                            const float* inv_scale, const int32_t* offset, float* out,
                            int64_t ldo) {
  __m512i acc[kMr][kNb];
  // Fully unrolled (pragmas) so that the kMr x kNb accumulators live in registers: at -O2 GCC
  // kept them in a stack array, a store-to-load round trip per multiply-add (3-4x slower).
#pragma GCC unroll kMr
  for (int r = 0; r < kMr; ++r) {
#pragma GCC unroll kNb
    for (int b = 0; b < kNb; ++b) acc[r][b] = _mm512_setzero_si512();
  }
  const int64_t lda = d4 * 4;
  for (int64_t k = 0; k < d4; ++k) {
    __m512i bv[kNb];
#pragma GCC unroll kNb
    for (int b = 0; b < kNb; ++b) {
      bv[b] = _mm512_loadu_si512(panel + (k * kNr + b * 16) * 4);
    }
#pragma GCC unroll kMr
    for (int r = 0; r < kMr; ++r) {
      int32_t word;
      std::memcpy(&word, a + r * lda + k * 4, 4);
      const __m512i av = _mm512_set1_epi32(word);
#pragma GCC unroll kNb
      for (int b = 0; b < kNb; ++b) DotBytesInto(&acc[r][b], av, bv[b]);
    }
  }
#pragma GCC unroll kNb
  for (int b = 0; b < kNb; ++b) {
    const __m512 sc = _mm512_loadu_ps(inv_scale + b * 16);
    const __m512i off = _mm512_loadu_si512(offset + b * 16);
#pragma GCC unroll kMr
    for (int r = 0; r < kMr; ++r) {
      const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][b], off));
      _mm512_storeu_ps(out + r * ldo + b * 16, _mm512_mul_ps(v, sc));
    }
  }
}

TEA_AVX512 int64_t IndicesAtLeast(const float* s, int64_t n, float thresh, int32_t* out) {
  int64_t count = 0, i = 0;
  const __m512 t = _mm512_set1_ps(thresh);
  __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i step = _mm512_set1_epi32(16);
  for (; i + 16 <= n; i += 16) {
    const __mmask16 keep = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + i), t, _CMP_GE_OQ);
    _mm512_mask_compressstoreu_epi32(out + count, keep, idx);
    count += __builtin_popcount(keep);
    idx = _mm512_add_epi32(idx, step);
  }
  for (; i < n; ++i) {
    if (s[i] >= thresh) out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

TEA_AVX512 float Dot(const float* a, const float* b, int64_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16), acc1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; j < d; ++j) s = std::fma(a[j], b[j], s);  // as the SIMD kernels contract it
  return s;
}

}  // namespace

const Kernels& Avx512Kernels() {
  static const Kernels k = {true, QuantizeRow, MicroKernel, IndicesAtLeast, Dot};
  return k;
}

}  // namespace baton::tea::int8
