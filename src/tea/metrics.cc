#include "tea/metrics.h"

#include <cstddef>

namespace baton::tea {

std::vector<int32_t> Ranks(const std::vector<float>& values, const std::vector<int32_t>& cols,
                           int64_t rows, int k, const std::vector<int32_t>& truth) {
  std::vector<int32_t> ranks(rows, -1);
  for (int64_t i = 0; i < rows; ++i) {
    const float* v = values.data() + i * k;
    const int32_t* c = cols.data() + i * k;
    int t = -1;
    for (int j = 0; j < k; ++j) {
      if (c[j] == truth[i]) t = j;
    }
    if (t < 0) continue;
    int32_t rank = 0;
    for (int j = 0; j < k; ++j) {
      rank += v[j] > v[t] || (v[j] == v[t] && c[j] < c[t]);
    }
    ranks[i] = rank;
  }
  return ranks;
}

Metrics Summarize(const std::vector<int32_t>& ranks, const std::vector<char>& include) {
  Metrics m;
  double h1 = 0, h10 = 0, rr = 0;
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (!include.empty() && !include[i]) continue;
    ++m.n;
    const int32_t r = ranks[i];
    if (r < 0) {
      ++m.misses;
      continue;
    }
    h1 += r == 0;
    h10 += r < 10;
    rr += 1.0 / (r + 1);
  }
  if (m.n > 0) {
    m.hits1 = h1 / m.n;
    m.hits10 = h10 / m.n;
    m.mrr = rr / m.n;
  }
  return m;
}

}  // namespace baton::tea
