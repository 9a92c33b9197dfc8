// The int8 search kernels in portable C++ (no target attribute: baseline x86-64 or any CPU). The
// same numbers as the SIMD kernels: exact int32 dot products, and the fp32 dot product with fused
// multiply-adds over 32 lanes reduced in the AVX-512 kernel's order. Slow; for tests and for
// CPUs without AVX2 when asked for explicitly (cpu.h).
#include <algorithm>
#include <cmath>

#include "tea/topk_int8_kernels.h"

namespace baton::tea::int8 {
namespace {

float QuantizeRow(const float* x, int64_t d, int8_t* out) {
  float m = 0.0f;
  for (int64_t j = 0; j < d; ++j) m = std::max(m, std::fabs(x[j]));
  const float s = m > 0 ? 127.0f / m : 0.0f;
  for (int64_t j = 0; j < d; ++j) {
    // Round to nearest even and saturate, as vcvtps2dq + vpmovsdb.
    const float v = std::nearbyint(x[j] * s);
    out[j] = static_cast<int8_t>(std::clamp(v, -128.0f, 127.0f));
  }
  return m;
}

void MicroKernel(const uint8_t* a, int64_t d4, const int8_t* panel, const float* inv_scale,
                 const int32_t* offset, float* out, int64_t ldo) {
  const int8_t* q = reinterpret_cast<const int8_t*>(a);
  const int64_t lda = d4 * 4;
  for (int r = 0; r < kMr; ++r) {
    int32_t acc[kNr] = {};
    for (int64_t k = 0; k < d4; ++k) {
      const int8_t* qa = q + r * lda + k * 4;
      const int8_t* pb = panel + k * kNr * 4;
      for (int c = 0; c < kNr; ++c) {
        acc[c] += qa[0] * pb[c * 4] + qa[1] * pb[c * 4 + 1] + qa[2] * pb[c * 4 + 2] +
                  qa[3] * pb[c * 4 + 3];
      }
    }
    for (int c = 0; c < kNr; ++c) out[r * ldo + c] = static_cast<float>(acc[c]) * inv_scale[c];
  }
}

int64_t IndicesAtLeast(const float* s, int64_t n, float thresh, int32_t* out) {
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (s[i] >= thresh) out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

float Dot(const float* a, const float* b, int64_t d) {
  float acc[32] = {};
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    for (int l = 0; l < 32; ++l) acc[l] = std::fma(a[j + l], b[j + l], acc[l]);
  }
  float v[16];
  for (int l = 0; l < 16; ++l) v[l] = acc[l] + acc[16 + l];
  float s = ReduceAdd16(v);
  for (; j < d; ++j) s = std::fma(a[j], b[j], s);  // as the SIMD kernels contract it
  return s;
}

}  // namespace

const Kernels& GenericKernels() {
  static const Kernels k = {false, QuantizeRow, MicroKernel, IndicesAtLeast, Dot};
  return k;
}

}  // namespace baton::tea::int8
