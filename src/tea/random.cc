#include "tea/random.h"

#include <cmath>

#include "tea/parallel.h"

namespace baton::tea {
namespace {

uint64_t SplitMix(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Uniform in (0, 1], never 0 so that log() is finite.
double Uniform(uint64_t& state) {
  return (static_cast<double>(SplitMix(state) >> 11) + 1.0) * 0x1p-53;
}

constexpr int64_t kBlock = 4096;

}  // namespace

uint64_t DeriveSeed(uint64_t base, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t s = base;
  for (uint64_t tag : {a, b, c}) {
    s ^= tag + 0x632BE59BD9B4E019ull;
    s = SplitMix(s);
  }
  return s;
}

void FillGaussian(float* out, int64_t n, uint64_t seed, int threads) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  ParallelFor(blocks, 8, threads, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      uint64_t state = DeriveSeed(seed, static_cast<uint64_t>(b));
      const int64_t end = std::min(n, (b + 1) * kBlock);
      for (int64_t i = b * kBlock; i < end; i += 2) {
        const double r = std::sqrt(-2.0 * std::log(Uniform(state)));
        const double phi = 2.0 * M_PI * Uniform(state);
        out[i] = static_cast<float>(r * std::cos(phi));
        if (i + 1 < end) out[i + 1] = static_cast<float>(r * std::sin(phi));
      }
    }
  });
}

}  // namespace baton::tea
