#include "tea/topk.h"

#include <cblas.h>

#include <algorithm>
#include <numeric>

#include "tea/memory.h"
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

TopK ExactTopK(const Mat& q, const Mat& c, int k, int threads, SubsetSearch* subset) {
  SubsetIndex sx = PrepareSubset(subset, q.rows(), c.rows());
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
      std::vector<float> masked;
      for (int64_t i = i0; i < i1; ++i) {
        const float* row = buf.data() + i * nc;
        SelectTopK(row, nc, k, &r.idx[(q0 + i) * k], &r.score[(q0 + i) * k]);
        const int32_t sp = subset ? sx.row_pos[q0 + i] : -1;
        if (sp < 0) continue;
        masked.resize(subset->cols.size());
        for (size_t j = 0; j < subset->cols.size(); ++j) masked[j] = row[subset->cols[j]];
        const int ks = subset->k;
        SelectTopK(masked.data(), static_cast<int64_t>(masked.size()), ks,
                   &subset->result.idx[sp * ks], &subset->result.score[sp * ks]);
      }
    });
  }
  return r;
}

}  // namespace

SubsetIndex PrepareSubset(SubsetSearch* subset, int64_t num_queries, int64_t num_candidates) {
  SubsetIndex sx;
  if (!subset) return sx;
  sx.row_pos.assign(num_queries, -1);
  sx.col_pos.assign(num_candidates, -1);
  for (size_t i = 0; i < subset->rows.size(); ++i)
    sx.row_pos[subset->rows[i]] = static_cast<int32_t>(i);
  for (size_t j = 0; j < subset->cols.size(); ++j)
    sx.col_pos[subset->cols[j]] = static_cast<int32_t>(j);
  subset->k = static_cast<int>(std::min<int64_t>(subset->k, subset->cols.size()));
  TopK& t = subset->result;
  t.rows = static_cast<int64_t>(subset->rows.size());
  t.k = subset->k;
  ResizeLarge(&t.idx, t.rows * t.k);
  ResizeLarge(&t.score, t.rows * t.k);
  return sx;
}

TopK TopKInnerProduct(const Mat& queries, const Mat& candidates, const SearchOptions& opt,
                      PhaseTimes* times, SubsetSearch* subset) {
  const int k = static_cast<int>(std::min<int64_t>(opt.k, candidates.rows()));
  const int64_t sub_cols = subset ? static_cast<int64_t>(subset->cols.size()) : candidates.rows();
  if (opt.exact || k + opt.margin >= candidates.rows() ||
      (subset && subset->k + opt.margin >= sub_cols)) {
    ScopedPhase phase(times, "search_fp32");
    return ExactTopK(queries, candidates, k, opt.threads, subset);
  }
  const KernelPath path = std::min(opt.kernel, DetectedKernelPath());
  return Int8TopK(queries, candidates, k, opt.margin, opt.rerank, opt.sorted, opt.threads, path,
                  times, subset);
}

}  // namespace baton::tea
