// Waiting on gloo unbound buffers within a collective's deadline, shared by baton's own algorithms
// (ring.cc, direct.cc). Internal to the module; throws gloo exceptions like its callers.
#pragma once

#include <chrono>
#include <cstddef>
#include <vector>

#include "comm/ring.h"
#include "comm/types.h"

namespace gloo {
class Context;
namespace transport {
class UnboundBuffer;
}
}  // namespace gloo

namespace baton::comm::transfer {

// Time left before the call's deadline, at least 1 ms (gloo reads a non-positive timeout as "use
// the default"; 1 ms makes an expired call fail now).
std::chrono::milliseconds Remaining(const ring::RingCall& call);

// One receive (or `n` sends) completed on `ub`, or gloo::IoException naming `who`.
void WaitRecv(gloo::transport::UnboundBuffer& ub, const ring::RingCall& call, const char* who);
void WaitSends(gloo::transport::UnboundBuffer& ub, int n, const ring::RingCall& call,
               const char* who);

// What every in-place block collective starts from: the call's context, its rank and size, the
// element size and the elements the layout covers.
struct CallShape {
  gloo::Context* context;
  int size, rank;
  size_t esize, total;
};
CallShape ShapeOf(const ring::RingCall& call, const std::vector<Block>& blocks, DataType type);

}  // namespace baton::comm::transfer
