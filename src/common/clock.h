// Time helpers. Lease deadlines are wall-clock milliseconds so they survive a master restart.
#pragma once

#include <cstdint>

namespace baton {

// Milliseconds since the Unix epoch (system clock).
int64_t WallMillis();
// Milliseconds on a monotonic clock, for measuring intervals within one process.
int64_t MonoMillis();
int64_t MonoMicros();
// Seconds on a monotonic clock, with sub-millisecond precision.
double MonoSeconds();

}  // namespace baton
