// Exact top-k inner-product search (spec §11): for every query row, the k candidate rows with the
// largest dot product, sorted by decreasing score (ties: lower candidate index first).
#pragma once

#include <cstdint>
#include <vector>

#include "tea/eigen.h"
#include "tea/timing.h"

namespace baton::tea {

struct TopK {
  int64_t rows = 0;
  int k = 0;
  std::vector<int32_t> idx;  // rows x k candidate row indices
  std::vector<float> score;  // rows x k fp32 inner products, descending per row
};

struct SearchOptions {
  int k = 500;
  int threads = 2;
  // true: fp32 GEMM over all pairs (the official FAISS flat search). false: int8 candidate
  // generation (AVX-512 VNNI, per-row scales; error ~2e-4 on unit vectors of width 2,720), then
  // exact fp32 re-scoring of the `rerank` best int8 candidates of each row; the others keep their
  // int8 estimate. With rerank >= k, k + margin candidates are re-scored and the result is the
  // exact top-k unless an exact member ranked below k + margin in int8. Re-scoring gathers random
  // candidate rows, which is memory-bound, hence the default of re-scoring only the head of each
  // row: that is where the Sinkhorn mass, the pseudo-labels and Hits@10 are decided.
  bool exact = false;
  int rerank = 64;
  int margin = 64;
};

// Queries and candidates must have the same width. k is clamped to the number of candidates.
TopK TopKInnerProduct(const Mat& queries, const Mat& candidates, const SearchOptions& opt,
                      PhaseTimes* times = nullptr);

// Selects the k largest of scores[0..n) into idx/score, sorted descending, ties by lower index.
void SelectTopK(const float* scores, int64_t n, int k, int32_t* idx, float* out);

// Whether the fast int8 path can run on this CPU (AVX-512 VNNI).
bool FastSearchSupported();

}  // namespace baton::tea
