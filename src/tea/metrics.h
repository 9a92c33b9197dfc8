// Ranking metrics of an alignment (spec §13).
#pragma once

#include <cstdint>
#include <vector>

namespace baton::tea {

struct Metrics {
  int64_t n = 0;       // pairs evaluated
  int64_t misses = 0;  // true partner not among the row's candidates (counts 0 everywhere)
  double hits1 = 0, hits10 = 0, mrr = 0;
};

// Rank (0-based) of `truth[i]` in row i of a rows x k support after sorting the row's values in
// decreasing order, ties by lower candidate id; -1 when truth[i] is not in the row.
std::vector<int32_t> Ranks(const std::vector<float>& values, const std::vector<int32_t>& cols,
                           int64_t rows, int k, const std::vector<int32_t>& truth);

// Hits@1, Hits@10 and MRR over the rows where include[i] (all rows if include is empty).
Metrics Summarize(const std::vector<int32_t>& ranks, const std::vector<char>& include = {});

}  // namespace baton::tea
