#include "train/straggler/balance.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace baton::train {

std::vector<int64_t> ProportionalShares(int64_t global, std::span<const double> speeds, int64_t lo,
                                        int64_t hi) {
  const size_t n = speeds.size();
  const double upper = hi > 0 ? static_cast<double>(hi) : INFINITY;
  // Water-filling: fix the parts a bound clamps, share the rest over the free ones; repeat until
  // no free part crosses a bound (each round fixes at least one part, so n rounds at most).
  std::vector<double> share(n, 0);
  std::vector<bool> fixed(n, false);
  for (size_t round = 0; round <= n; ++round) {
    double left = static_cast<double>(global), free_speed = 0;
    for (size_t i = 0; i < n; ++i) {
      if (fixed[i]) {
        left -= share[i];
      } else {
        free_speed += speeds[i];
      }
    }
    bool clamped = false;
    for (size_t i = 0; i < n; ++i) {
      if (fixed[i]) continue;
      share[i] = free_speed > 0 ? left * speeds[i] / free_speed : 0;
      if (share[i] < static_cast<double>(lo) || share[i] > upper) {
        share[i] = std::clamp(share[i], static_cast<double>(lo), upper);
        fixed[i] = true;
        clamped = true;
      }
    }
    if (!clamped) break;
  }
  std::vector<int64_t> rows(n);
  std::vector<size_t> order(n);
  int64_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    rows[i] = static_cast<int64_t>(std::floor(share[i] + 1e-9));
    given += rows[i];
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return share[a] - static_cast<double>(rows[a]) > share[b] - static_cast<double>(rows[b]);
  });
  // Largest remainder; the loop also absorbs rounding drift of the shares in either direction.
  for (size_t k = 0; given < global; k = (k + 1) % n) {
    if (hi > 0 && rows[order[k]] >= hi) continue;
    ++rows[order[k]];
    ++given;
  }
  for (size_t k = n; given > global && k-- > 0;) {
    if (rows[order[k]] > lo) {
      --rows[order[k]];
      --given;
    }
  }
  return rows;
}

double PredictedStepMs(std::span<const int64_t> rows, std::span<const double> speeds) {
  double worst = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    worst = std::max(worst, static_cast<double>(rows[i]) / speeds[i]);
  }
  return worst;
}

std::vector<int64_t> MicroCaps(std::span<const int64_t> rows, int64_t cap) {
  std::vector<int64_t> micro(rows.size(), 0);
  if (cap <= 0) return micro;
  for (size_t i = 0; i < rows.size(); ++i) micro[i] = rows[i] > cap ? cap : 0;
  return micro;
}

}  // namespace baton::train
