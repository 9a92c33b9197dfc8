#include "tea/sinkhorn.h"

#include <algorithm>
#include <cmath>

#include "tea/parallel.h"

namespace baton::tea {

void Sinkhorn(std::vector<float>* values, const std::vector<int32_t>& cols, int64_t rows, int k,
              int64_t num_cols, double temperature, int iterations, int threads) {
  float* v = values->data();
  const double inv_t = 1.0 / temperature;
  ParallelFor(rows, 256, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      float* row = v + i * k;
      const float mx = *std::max_element(row, row + k);
      for (int j = 0; j < k; ++j) row[j] = static_cast<float>(std::exp((row[j] - mx) * inv_t));
    }
  });
  // Column sums: each fixed chunk of rows sums into its own array, chunks are added in order.
  constexpr int64_t kChunk = 1024;
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  std::vector<std::vector<double>> partial(chunks);
  std::vector<double> colsum(num_cols);
  std::vector<float> colscale(num_cols);
  for (int it = 0; it < iterations; ++it) {
    ParallelFor(rows, kChunk, threads, [&](int64_t r0, int64_t r1) {
      std::vector<double>& part = partial[r0 / kChunk];
      part.assign(num_cols, 0.0);
      for (int64_t i = r0; i < r1; ++i) {
        float* row = v + i * k;
        double s = 0;
        for (int j = 0; j < k; ++j) s += row[j];
        const float inv = s > 0 ? static_cast<float>(1.0 / s) : 0.0f;
        for (int j = 0; j < k; ++j) {
          row[j] *= inv;
          part[cols[i * k + j]] += row[j];
        }
      }
    });
    std::fill(colsum.begin(), colsum.end(), 0.0);
    for (const auto& part : partial) {
      for (int64_t c = 0; c < num_cols; ++c) colsum[c] += part[c];
    }
    for (int64_t c = 0; c < num_cols; ++c) {
      colscale[c] = colsum[c] > 0 ? static_cast<float>(1.0 / colsum[c]) : 0.0f;
    }
    ParallelFor(rows * k, 1 << 16, threads, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) v[p] *= colscale[cols[p]];
    });
  }
}

}  // namespace baton::tea
