// Exact top-k inner-product search (spec §11): for every query row, the k candidate rows with the
// largest dot product, sorted by decreasing score (ties: lower candidate index first).
#pragma once

#include <cstdint>
#include <vector>

#include "tea/cpu.h"
#include "tea/eigen.h"
#include "tea/timing.h"

namespace baton::tea {

struct TopK {
  int64_t rows = 0;
  int k = 0;
  std::vector<int32_t> idx;  // rows x k candidate row indices
  std::vector<float> score;  // rows x k inner products, descending per row unless not `sorted`
};

struct SearchOptions {
  int k = 500;
  int threads = 2;
  // true: fp32 GEMM over all pairs (the official FAISS flat search). false: int8 candidate
  // generation (per-row scales; error ~2e-4 on unit vectors of width 2,720) with the kernels of
  // `kernel` (cpu.h; a path the CPU lacks is lowered to the best it has), then
  // exact fp32 re-scoring of the `rerank` best int8 candidates of each row; the others keep their
  // int8 estimate. With rerank >= k, k + margin candidates are re-scored and the result is the
  // exact top-k unless an exact member ranked below k + margin in int8. Re-scoring gathers random
  // candidate rows, which is memory-bound, hence the default of re-scoring only the head of each
  // row: that is where the Sinkhorn mass, the pseudo-labels and Hits@10 are decided.
  bool exact = false;
  KernelPath kernel = DetectedKernelPath();
  int rerank = 64;
  int margin = 64;
  // Whether each row's k results must be in decreasing order. LightTEA's later steps only need
  // the set (Sinkhorn, ranks and argmax compare values), so Align skips the sort (fast path only).
  bool sorted = true;
};

// A second search answered from the same score computation: the rows `rows` (indices into the
// queries) against only the candidates `cols` (indices into the candidates), top `k` each. The
// result's rows follow `rows` and its idx are positions in `cols`. LightTEA's pseudo-labelling
// searches exactly such a sub-block of the evaluation's scores.
struct SubsetSearch {
  std::vector<int32_t> rows, cols;
  int k = 0;
  TopK result;
};

// Queries and candidates must have the same width. k is clamped to the number of candidates.
// `subset`, if given, is answered as well (see SubsetSearch).
TopK TopKInnerProduct(const Mat& queries, const Mat& candidates, const SearchOptions& opt,
                      PhaseTimes* times = nullptr, SubsetSearch* subset = nullptr);

// Maps a SubsetSearch to per-row / per-column positions (-1 = not in the subset), and allocates
// its result.
struct SubsetIndex {
  std::vector<int32_t> row_pos, col_pos;
};
SubsetIndex PrepareSubset(SubsetSearch* subset, int64_t num_queries, int64_t num_candidates);

// Selects the k largest of scores[0..n) into idx/score, sorted descending, ties by lower index.
void SelectTopK(const float* scores, int64_t n, int k, int32_t* idx, float* out);

}  // namespace baton::tea
