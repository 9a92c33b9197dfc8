#include "tea/topk_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <numeric>

#include "tea/memory.h"
#include "tea/parallel.h"
#include "tea/topk_int8_kernels.h"

namespace baton::tea {
namespace {

using int8::kMr;
using int8::kNr;
constexpr int kMc = 192;  // query rows per thread task (their int8 rows stay in L2)

// Candidates quantised to int8 per row (scale 127 / max|x|) and packed in panels of kNr rows:
// within a panel, for every 4 consecutive dimensions, kNr lanes x 4 bytes (topk_int8_kernels.h).
struct PackedCandidates {
  int64_t n = 0, panels = 0, d4 = 0;  // d4 = padded width / 4
  std::vector<int8_t> data;           // panels x d4 x kNr x 4
  std::vector<float> inv_scale;       // panels * kNr, 0 for padding
  std::vector<int32_t> offset;        // 128 * sum of the row's int8 values (undoes the u8 shift)
};

PackedCandidates PackCandidates(const Mat& c, const int8::Kernels& kern, int threads) {
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
      const float mx = kern.quantize_row(c.data() + r * d, d, row.data());
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

// Query rows as int8, or uint8 (int8 + 128) for kernels that want them unsigned, row-major with
// padded width and rows padded to whole micro-kernels; and each row's inverse scale.
std::vector<uint8_t> QuantizeQueries(const Mat& q, int64_t d4, const int8::Kernels& kern,
                                     int threads, std::vector<float>* inv_scale) {
  inv_scale->assign(q.rows(), 0.0f);
  const int64_t rows = (q.rows() + kMr - 1) / kMr * kMr;
  const uint8_t shift = kern.unsigned_queries ? 128 : 0;
  std::vector<uint8_t> out;
  ResizeLarge(&out, rows * d4 * 4);
  std::fill(out.begin(), out.end(), shift);
  ParallelFor(q.rows(), 256, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int8_t> row(q.cols());
    for (int64_t r = r0; r < r1; ++r) {
      const float mx = kern.quantize_row(q.data() + r * q.cols(), q.cols(), row.data());
      (*inv_scale)[r] = mx > 0 ? mx / 127.0f : 0.0f;
      uint8_t* o = out.data() + r * d4 * 4;
      for (int64_t j = 0; j < q.cols(); ++j) o[j] = static_cast<uint8_t>(row[j] + shift);
    }
  });
  return out;
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

// Keys of the m largest of s[0..n), unordered. A threshold taken from a strided sample keeps the
// full scan to one vector compare per 16 elements.
void SelectCandidates(const float* s, int64_t n, int m, const int8::Kernels& kern,
                      std::vector<uint64_t>* keys, std::vector<float>* tmp,
                      std::vector<int32_t>* ids) {
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
  int64_t count = kern.indices_at_least(s, n, thresh, ids->data());
  if (count < m) count = kern.indices_at_least(s, n, -INFINITY, ids->data());  // unlucky sample
  keys->resize(count);
  for (int64_t j = 0; j < count; ++j) (*keys)[j] = Key(s[(*ids)[j]], (*ids)[j]);
  if (count > m) {
    std::nth_element(keys->begin(), keys->begin() + m, keys->end());
    keys->resize(m);
  }
}

}  // namespace

TopK Int8TopK(const Mat& q, const Mat& c, int k, int margin, int rerank, bool sorted, int threads,
              KernelPath path, PhaseTimes* times, SubsetSearch* subset) {
  const int8::Kernels& kern = int8::KernelsFor(path);
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
    pc = PackCandidates(c, kern, threads);
    qa = QuantizeQueries(q, pc.d4, kern, threads, &q_inv_scale);
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
        kern.micro_kernel(qa.data() + (r0 + i) * pc.d4 * 4, pc.d4, panel,
                          pc.inv_scale.data() + p * kNr, pc.offset.data() + p * kNr,
                          buf.get() + i * ldo + p * kNr, ldo);
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
      SelectCandidates(approx, n, m, kern, &keys, &tmp, &ids);
      // Exact fp32 scores for the best exact_n by int8, the int8 estimate (in cosine units) for
      // the rest.
      if (exact_n < m) std::nth_element(keys.begin(), keys.begin() + exact_n, keys.end());
      const float* qi = q.data() + i * d;
      for (int j = 0; j < m; ++j) {
        const int32_t pos = KeyIndex(keys[j]);
        const int32_t row = cols ? cols[pos] : pos;
        const float v =
            j < exact_n ? kern.dot(qi, c.data() + row * d, d) : approx[pos] * q_inv_scale[i];
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
