#include "comm/unbound_wait.h"

#include <gloo/common/error.h>
#include <gloo/context.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <string>

namespace baton::comm::transfer {

std::chrono::milliseconds Remaining(const ring::RingCall& call) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      call.deadline - std::chrono::steady_clock::now());
  return std::max(left, std::chrono::milliseconds(1));
}

void WaitRecv(gloo::transport::UnboundBuffer& ub, const ring::RingCall& call, const char* who) {
  if (!ub.waitRecv(Remaining(call)))
    throw gloo::IoException(std::string(who) + ": receive aborted");
}

void WaitSends(gloo::transport::UnboundBuffer& ub, int n, const ring::RingCall& call,
               const char* who) {
  for (int i = 0; i < n; ++i) {
    if (!ub.waitSend(Remaining(call))) throw gloo::IoException(std::string(who) + ": send aborted");
  }
}

CallShape ShapeOf(const ring::RingCall& call, const std::vector<Block>& blocks, DataType type) {
  // Blocks may come in any order (PaRO's permuted chunk layouts): the buffer ends at the last
  // block's end, wherever that block sits in the list.
  size_t total = 0;
  for (const Block& b : blocks) total = std::max(total, b.offset + b.count);
  return {call.context, call.context->size, call.context->rank, ElementSize(type), total};
}

}  // namespace baton::comm::transfer
