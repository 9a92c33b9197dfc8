#include "train/straggler/balance.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace baton::train {

std::vector<int64_t> ProportionalShares(int64_t global, std::span<const double> speeds, int64_t lo,
                                        int64_t hi) {
  const size_t n = speeds.size();
  const double lower = static_cast<double>(lo);
  const double upper = hi > 0 ? static_cast<double>(hi) : static_cast<double>(global);
  // Relative speeds in (0, 1]: no overflow whatever the unit.
  double fastest = 0;
  for (double v : speeds) fastest = std::max(fastest, v);
  std::vector<double> v(n, 1.0);
  if (fastest > 0 && std::isfinite(fastest)) {
    for (size_t i = 0; i < n; ++i) v[i] = std::max(speeds[i] / fastest, 1e-12);
  }
  // share_i(l) = clamp(l * v_i, lo, hi) grows with l; find the l where the shares sum to
  // `global` by bisection (the clamped parts then take exactly what their bounds allow and the
  // free ones share the rest in proportion).
  auto total = [&](double l) {
    double sum = 0;
    for (size_t i = 0; i < n; ++i) sum += std::clamp(l * v[i], lower, upper);
    return sum;
  };
  double a = 0, b = static_cast<double>(global) / 1e-12 + 1;
  for (int it = 0; it < 200 && b - a > 1e-9 * b; ++it) {
    const double mid = (a + b) / 2;
    (total(mid) < static_cast<double>(global) ? a : b) = mid;
  }
  std::vector<double> share(n);
  for (size_t i = 0; i < n; ++i) share[i] = std::clamp(b * v[i], lower, upper);
  // Integers by largest remainder: floors first, then one row each to the largest fractions (ties
  // to the lower rank), within the bounds; rounding drift either way is settled the same way.
  std::vector<int64_t> rows(n);
  std::vector<size_t> order(n);
  int64_t given = 0;
  for (size_t i = 0; i < n; ++i) {
    rows[i] =
        std::clamp(static_cast<int64_t>(std::floor(share[i] + 1e-9)), lo, hi > 0 ? hi : global);
    given += rows[i];
    order[i] = i;
  }
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) {
    return share[x] - static_cast<double>(rows[x]) > share[y] - static_cast<double>(rows[y]);
  });
  // Each pass over the ranks moves at least one row while a move is possible (the bounds admit
  // `global`: lo * n <= global <= hi * n), so this ends.
  while (given != global) {
    bool moved = false;
    for (size_t k = 0; k < n && given != global; ++k) {
      const size_t i = given < global ? order[k] : order[n - 1 - k];
      if (given < global && (hi <= 0 || rows[i] < hi)) {
        ++rows[i];
        ++given;
        moved = true;
      } else if (given > global && rows[i] > lo) {
        --rows[i];
        --given;
        moved = true;
      }
    }
    if (!moved) break;  // bounds that cannot hold `global` (a caller's bug): best effort
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
