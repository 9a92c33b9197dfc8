#include "tea/topk.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>

#include "tea/parallel.h"
#include "tea/topk_int8.h"

namespace baton::tea {

void SelectTopK(const float* scores, int64_t n, int k, int32_t* idx, float* out) {
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  };
  if (k < n) std::nth_element(order.begin(), order.begin() + k, order.end(), better);
  std::sort(order.begin(), order.begin() + k, better);
  for (int j = 0; j < k; ++j) {
    idx[j] = order[j];
    out[j] = scores[order[j]];
  }
}

namespace {

TopK ExactTopK(const Mat& q, const Mat& c, int k, int threads) {
  TopK r;
  r.rows = q.rows();
  r.k = k;
  r.idx.resize(r.rows * k);
  r.score.resize(r.rows * k);
  const int64_t nc = c.rows(), d = q.cols();
  const int64_t block = 512;
  std::vector<float> buf(block * nc);
  openblas_set_num_threads(threads);
  for (int64_t q0 = 0; q0 < r.rows; q0 += block) {
    const int64_t m = std::min(block, r.rows - q0);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(nc),
                static_cast<int>(d), 1.0f, q.data() + q0 * d, static_cast<int>(d), c.data(),
                static_cast<int>(d), 0.0f, buf.data(), static_cast<int>(nc));
    ParallelFor(m, 16, threads, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        SelectTopK(buf.data() + i * nc, nc, k, &r.idx[(q0 + i) * k], &r.score[(q0 + i) * k]);
      }
    });
  }
  return r;
}

}  // namespace

bool FastSearchSupported() { return Int8SearchSupported(); }

TopK TopKInnerProduct(const Mat& queries, const Mat& candidates, const SearchOptions& opt,
                      PhaseTimes* times) {
  const int k = static_cast<int>(std::min<int64_t>(opt.k, candidates.rows()));
  if (opt.exact || !Int8SearchSupported() || k + opt.margin >= candidates.rows()) {
    ScopedPhase phase(times, "search_fp32");
    return ExactTopK(queries, candidates, k, opt.threads);
  }
  return Int8TopK(queries, candidates, k, opt.margin, opt.rerank, opt.threads, times);
}

}  // namespace baton::tea
