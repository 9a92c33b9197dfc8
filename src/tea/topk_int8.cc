#include "tea/topk_int8.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <numeric>

#include "tea/memory.h"
#include "tea/parallel.h"

// Only the kernels carry an AVX-512 target attribute (not the whole file), so no inline library
// code compiled for AVX-512 can leak into other translation units; Int8SearchSupported() guards
// every call. GCC 12 reports false "uninitialized" warnings inside its own AVX-512 intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define TEA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,fma")))

namespace baton::tea {
namespace {

constexpr int kMr = 8;         // query rows per micro-kernel
constexpr int kNb = 3;         // 16-candidate vectors per micro-kernel
constexpr int kNr = 16 * kNb;  // candidates per packed panel
constexpr int kMc = 192;       // query rows per thread task (their int8 rows stay in L2)

// Candidates quantised to int8 per row (scale 127 / max|x|) and packed in panels of kNr rows:
// within a panel, for every 4 consecutive dimensions, 16 lanes x 4 bytes per vector, so one 64-byte
// load feeds one vpdpbusd.
struct PackedCandidates {
  int64_t n = 0, panels = 0, d4 = 0;  // d4 = padded width / 4
  std::vector<int8_t> data;           // panels x d4 x kNr x 4
  std::vector<float> inv_scale;       // panels * kNr, 0 for padding
  std::vector<int32_t> offset;        // 128 * sum of the row's int8 values (undoes the u8 shift)
};

// Quantises x[0..d) to int8 with scale 127 / max|x| (round to nearest even); returns max|x|.
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

PackedCandidates PackCandidates(const Mat& c, int threads) {
  PackedCandidates p;
  p.n = c.rows();
  p.panels = (p.n + kNr - 1) / kNr;
  const int64_t d = c.cols();
  p.d4 = (d + 3) / 4;
  ResizeLarge(&p.data, p.panels * p.d4 * kNr * 4);
  std::fill(p.data.begin(), p.data.end(), 0);
  p.inv_scale.assign(p.panels * kNr, 0.0f);
  p.offset.assign(p.panels * kNr, 0);
  ParallelFor(p.n, 256, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int8_t> row(p.d4 * 4, 0);
    for (int64_t r = r0; r < r1; ++r) {
      const float mx = QuantizeRow(c.data() + r * d, d, row.data());
      p.inv_scale[r] = mx > 0 ? mx / 127.0f : 0.0f;
      int8_t* panel = p.data.data() + (r / kNr) * p.d4 * kNr * 4 + (r % kNr) * 4;
      int32_t sum = 0;
      for (int64_t j4 = 0; j4 < p.d4; ++j4) {
        std::memcpy(panel + j4 * kNr * 4, row.data() + j4 * 4, 4);
        sum += row[j4 * 4] + row[j4 * 4 + 1] + row[j4 * 4 + 2] + row[j4 * 4 + 3];
      }
      p.offset[r] = 128 * sum;
    }
  });
  return p;
}

// Query rows as uint8 (int8 + 128), row-major with padded width, and each row's inverse scale.
std::vector<uint8_t> QuantizeQueries(const Mat& q, int64_t d4, int threads,
                                     std::vector<float>* inv_scale) {
  inv_scale->assign(q.rows(), 0.0f);
  const int64_t rows = (q.rows() + kMr - 1) / kMr * kMr;
  std::vector<uint8_t> out;
  ResizeLarge(&out, rows * d4 * 4);
  std::fill(out.begin(), out.end(), 128);
  ParallelFor(q.rows(), 256, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int8_t> row(q.cols());
    for (int64_t r = r0; r < r1; ++r) {
      const float mx = QuantizeRow(q.data() + r * q.cols(), q.cols(), row.data());
      (*inv_scale)[r] = mx > 0 ? mx / 127.0f : 0.0f;
      uint8_t* o = out.data() + r * d4 * 4;
      for (int64_t j = 0; j < q.cols(); ++j) o[j] = static_cast<uint8_t>(row[j] + 128);
    }
  });
  return out;
}

// acc += dot products of the 4-byte groups of u8 `a` and s8 `b` (vpdpbusd), updating the register
// in place. Written as inline assembly because GCC 12 compiles the _mm512_dpbusd_epi32 intrinsic
// with a register copy per call, which in a 24-accumulator kernel spills to the stack and ran the
// search ~1.6x slower.
TEA_AVX512 inline void DotBytesInto(__m512i* acc, __m512i a, __m512i b) {
  asm("vpdpbusd %2, %1, %0" : "+v"(*acc) : "v"(a), "v"(b));
}

// scores[r][c] for kMr query rows against one panel; approximate inner products up to the
// query's scale.
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

// Sort key: larger value first, then lower index; a float's bits made monotone as uint32.
uint64_t Key(float v, int32_t idx) {
  uint32_t b;
  std::memcpy(&b, &v, 4);
  b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);  // ascending order of v
  return (static_cast<uint64_t>(~b) << 32) | static_cast<uint32_t>(idx);
}

float KeyValue(uint64_t key) {
  uint32_t b = static_cast<uint32_t>(~(key >> 32));
  b = (b & 0x80000000u) ? (b & 0x7fffffffu) : ~b;
  float v;
  std::memcpy(&v, &b, 4);
  return v;
}

int32_t KeyIndex(uint64_t key) { return static_cast<int32_t>(key & 0xffffffffu); }

// Writes the indices i with s[i] >= thresh to out (capacity n); returns how many.
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

// Keys of the m largest of s[0..n), unordered. A threshold taken from a strided sample keeps the
// full scan to one vector compare per 16 elements.
void SelectCandidates(const float* s, int64_t n, int m, std::vector<uint64_t>* keys,
                      std::vector<float>* tmp, std::vector<int32_t>* ids) {
  constexpr int64_t kStride = 16;
  const int64_t sample_n = n / kStride;
  const int64_t want = 2 * m / kStride;  // aim for ~2x m survivors
  float thresh = -INFINITY;
  if (want > 4 && sample_n > want) {
    tmp->resize(sample_n);
    for (int64_t i = 0; i < sample_n; ++i) (*tmp)[i] = s[i * kStride];
    std::nth_element(tmp->begin(), tmp->begin() + want, tmp->end(), std::greater<float>());
    thresh = (*tmp)[want];
  }
  ids->resize(n);
  int64_t count = IndicesAtLeast(s, n, thresh, ids->data());
  if (count < m) count = IndicesAtLeast(s, n, -INFINITY, ids->data());  // unlucky sample
  keys->resize(count);
  for (int64_t j = 0; j < count; ++j) (*keys)[j] = Key(s[(*ids)[j]], (*ids)[j]);
  if (count > m) {
    std::nth_element(keys->begin(), keys->begin() + m, keys->end());
    keys->resize(m);
  }
}

TEA_AVX512 float Dot(const float* a, const float* b, int64_t d) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= d; j += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16), acc1);
  }
  float s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; j < d; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace

bool Int8SearchSupported() {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vnni");
}

TopK Int8TopK(const Mat& q, const Mat& c, int k, int margin, int rerank, bool sorted, int threads,
              PhaseTimes* times, SubsetSearch* subset) {
  const SubsetIndex sx = PrepareSubset(subset, q.rows(), c.rows());
  TopK r;
  r.rows = q.rows();
  r.k = k;
  ResizeLarge(&r.idx, r.rows * k);
  ResizeLarge(&r.score, r.rows * k);
  // Full re-ranking needs a margin of int8 candidates beyond k; partial re-ranking does not.
  const int64_t d = q.cols();

  PackedCandidates pc;
  std::vector<uint8_t> qa;
  std::vector<float> q_inv_scale;
  {
    ScopedPhase phase(times, "search_quantize");
    pc = PackCandidates(c, threads);
    qa = QuantizeQueries(q, pc.d4, threads, &q_inv_scale);
  }
  const int64_t ldo = pc.panels * kNr;
  ScopedPhase phase(times, "search_int8");
  ParallelFor(r.rows, kMc, threads, [&](int64_t r0, int64_t r1) {
    const int64_t rows = (r1 - r0 + kMr - 1) / kMr * kMr;
    // ~15 MB per thread, reused across chunks and calls; every entry is written before it is read.
    thread_local std::unique_ptr<float[]> buf;
    thread_local size_t buf_size = 0;
    if (buf_size < static_cast<size_t>(rows * ldo)) {
      buf_size = rows * ldo;
      buf.reset(new float[buf_size]);
      AdviseHugePages(buf.get(), buf_size * sizeof(float));
    }
    for (int64_t p = 0; p < pc.panels; ++p) {
      const int8_t* panel = pc.data.data() + p * pc.d4 * kNr * 4;
      for (int64_t i = 0; i < rows; i += kMr) {
        MicroKernel(qa.data() + (r0 + i) * pc.d4 * 4, pc.d4, panel, pc.inv_scale.data() + p * kNr,
                    pc.offset.data() + p * kNr, buf.get() + i * ldo + p * kNr, ldo);
      }
    }
    std::vector<int32_t> ids;
    std::vector<float> tmp, masked;
    std::vector<uint64_t> keys;
    // The k best of approx[0..n) with exact fp32 scores for the head; `cols` maps positions in
    // approx to candidate rows (nullptr: identity).
    auto select_row = [&](int64_t i, const float* approx, int64_t n, int kk, const int32_t* cols,
                          int32_t* out_idx, float* out_score) {
      const bool full = rerank >= kk;  // full re-ranking needs a margin beyond k
      const int m = static_cast<int>(std::min<int64_t>(full ? kk + margin : kk, n));
      const int exact_n = full ? m : std::min(rerank, m);
      SelectCandidates(approx, n, m, &keys, &tmp, &ids);
      // Exact fp32 scores for the best exact_n by int8, the int8 estimate (in cosine units) for
      // the rest.
      if (exact_n < m) std::nth_element(keys.begin(), keys.begin() + exact_n, keys.end());
      const float* qi = q.data() + i * d;
      for (int j = 0; j < m; ++j) {
        const int32_t pos = KeyIndex(keys[j]);
        const int32_t row = cols ? cols[pos] : pos;
        const float v = j < exact_n ? Dot(qi, c.data() + row * d, d) : approx[pos] * q_inv_scale[i];
        keys[j] = Key(v, pos);
      }
      if (sorted) {
        std::partial_sort(keys.begin(), keys.begin() + kk, keys.end());
      } else if (m > kk) {
        std::nth_element(keys.begin(), keys.begin() + kk, keys.end());
      }
      for (int j = 0; j < kk; ++j) {
        out_idx[j] = KeyIndex(keys[j]);
        out_score[j] = KeyValue(keys[j]);
      }
    };
    for (int64_t i = r0; i < r1; ++i) {
      const float* approx = buf.get() + (i - r0) * ldo;
      select_row(i, approx, c.rows(), k, nullptr, &r.idx[i * k], &r.score[i * k]);
      const int32_t sp = subset ? sx.row_pos[i] : -1;
      if (sp < 0) continue;
      const int64_t ns = static_cast<int64_t>(subset->cols.size());
      masked.resize(ns);
      for (int64_t j = 0; j < ns; ++j) masked[j] = approx[subset->cols[j]];
      const int ks = subset->k;
      select_row(i, masked.data(), ns, ks, subset->cols.data(), &subset->result.idx[sp * ks],
                 &subset->result.score[sp * ks]);
    }
  });
  return r;
}

}  // namespace baton::tea
