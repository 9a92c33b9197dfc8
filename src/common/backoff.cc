#include "common/backoff.h"

#include <algorithm>
#include <cmath>
#include <random>

namespace baton {

Backoff::Backoff(BackoffOptions options, uint64_t seed)
    : options_(options), rng_(seed != 0 ? seed : std::random_device{}()) {}

std::chrono::milliseconds Backoff::Next() {
  double base = static_cast<double>(options_.initial.count()) *
                std::pow(options_.multiplier, static_cast<double>(attempt_));
  base = std::min(base, static_cast<double>(options_.max.count()));
  ++attempt_;
  // xorshift64: tiny, deterministic under a seed, good enough for jitter.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  double unit = static_cast<double>(rng_ % 10000) / 10000.0;  // [0, 1)
  double factor = 1.0 + options_.jitter * (2.0 * unit - 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(1.0, base * factor)));
}

}  // namespace baton
