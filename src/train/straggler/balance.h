// The arithmetic of AntDT's batch sizing (papers/antdt.md §6.2-6.3), free of any policy state:
// shares of the global batch in proportion to speed, and the step time a split predicts.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace baton::train {

// Splits `global` samples over ranks in proportion to `speeds` (any positive unit): b_i =
// clamp(l * v_i, lo, hi) with l such that the parts sum to `global` (hi <= 0: no upper bound), so a
// clamped part takes what its bound allows and the others share the rest in proportion; then made
// integer by largest remainder (floors first, the remaining samples one each to the largest
// fractional parts, ties to the lower rank). The parts sum to `global`. Requires lo * n <= global
// and, with a bound, hi * n >= global.
std::vector<int64_t> ProportionalShares(int64_t global, std::span<const double> speeds, int64_t lo,
                                        int64_t hi);

// The step time a split predicts: the slowest rank's rows / speed (compute only; the all-reduce
// does not depend on the split).
double PredictedStepMs(std::span<const int64_t> rows, std::span<const double> speeds);

// Micro-batch caps for gradient accumulation: each rank runs ceil(rows / cap) passes of at most
// `cap` rows (0: no cap, one pass).
std::vector<int64_t> MicroCaps(std::span<const int64_t> rows, int64_t cap);

}  // namespace baton::train
