// Deterministic Gaussian draws. Every random matrix of a run comes from a stream derived from the
// run's --seed and a purpose tag, so the same seed gives the same result for any thread count.
#pragma once

#include <cstdint>

namespace baton::tea {

// Mixes a base seed with up to three tags into an independent stream seed (SplitMix64 steps).
uint64_t DeriveSeed(uint64_t base, uint64_t a, uint64_t b = 0, uint64_t c = 0);

// Fills out[0..n) with N(0, 1) draws from stream `seed` (Box–Muller on a SplitMix64 generator;
// generated in fixed blocks of 4,096 values, in parallel when threads > 1).
void FillGaussian(float* out, int64_t n, uint64_t seed, int threads);

}  // namespace baton::tea
