// Minimal data parallelism for the dense work: a loop split into fixed chunks over std::threads.
#pragma once

#include <cstdint>
#include <functional>

namespace baton::tea {

// Calls fn(begin, end) for consecutive chunks of [0, n) of at most `grain` items, on up to
// `threads` threads (the caller's included). Chunk boundaries depend on n and grain only, never on
// `threads`, so a computation whose chunks are independent gives the same bits for any thread
// count.
void ParallelFor(int64_t n, int64_t grain, int threads,
                 const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace baton::tea
