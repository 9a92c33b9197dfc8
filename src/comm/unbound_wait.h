// Waiting on gloo unbound buffers within a collective's deadline, shared by baton's own algorithms
// (ring.cc, direct.cc). Internal to the module; throws gloo exceptions like its callers.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "comm/ring.h"
#include "comm/types.h"

namespace gloo::transport {
class UnboundBuffer;
}

namespace baton::comm::transfer {

// Time left before the call's deadline, at least 1 ms (gloo reads a non-positive timeout as "use
// the default"; 1 ms makes an expired call fail now).
std::chrono::milliseconds Remaining(const ring::RingCall& call);

// One receive (or `n` sends) completed on `ub`, or gloo::IoException naming `who`.
void WaitRecv(gloo::transport::UnboundBuffer& ub, const ring::RingCall& call, const char* who);
void WaitSends(gloo::transport::UnboundBuffer& ub, int n, const ring::RingCall& call,
               const char* who);

// Elements covered by a contiguous block layout.
size_t TotalCount(const std::vector<Block>& blocks);

}  // namespace baton::comm::transfer
