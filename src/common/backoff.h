// Exponential back-off with jitter, for retrying idempotent calls and restarting processes.
#pragma once

#include <chrono>
#include <cstdint>

namespace baton {

struct BackoffOptions {
  std::chrono::milliseconds initial{100};  // first delay
  std::chrono::milliseconds max{5000};     // delays never exceed this
  double multiplier = 2.0;                 // growth per attempt
  double jitter = 0.2;  // +/- this fraction, so retries of many clients spread out
};

class Backoff {
 public:
  explicit Backoff(BackoffOptions options = {}, uint64_t seed = 0);
  // The delay before the next attempt; grows with each call.
  std::chrono::milliseconds Next();
  void Reset() { attempt_ = 0; }
  int attempts() const { return attempt_; }

 private:
  BackoffOptions options_;
  int attempt_ = 0;
  uint64_t rng_;
};

}  // namespace baton
