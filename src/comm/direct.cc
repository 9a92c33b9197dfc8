#include "comm/direct.h"

#include <gloo/common/error.h>
#include <gloo/context.h>
#include <gloo/transport/unbound_buffer.h>

#include <algorithm>
#include <memory>

#include "comm/reduce.h"
#include "comm/unbound_wait.h"

namespace baton::comm::direct {
namespace {

using transfer::WaitRecv;
using transfer::WaitSends;

// The ranks other than r in the order r+1, r+2, ... (so that ranks do not all send to rank 0
// first, and so that reduction order is fixed per owner).
std::vector<int> PeersAfter(int r, int p) {
  std::vector<int> peers;
  for (int k = 1; k < p; ++k) peers.push_back((r + k) % p);
  return peers;
}

}  // namespace

void ReduceScatter(const ring::RingCall& call, void* buf, const std::vector<Block>& blocks,
                   DataType type, ReduceOp op, std::vector<char>* scratch) {
  const auto [context, p, r, esize, total] = transfer::ShapeOf(call, blocks, type);
  if (p == 1 || total == 0) return;
  gloo::Context& ctx = *context;
  const Block mine = blocks[static_cast<size_t>(r)];
  const size_t mine_bytes = mine.count * esize;
  const std::vector<int> peers = PeersAfter(r, p);
  char* base = static_cast<char*>(buf);

  // Slot k of the scratch receives peers[k]'s copy of block r.
  if (scratch->size() < peers.size() * mine_bytes) scratch->resize(peers.size() * mine_bytes);
  auto data = ctx.createUnboundBuffer(base, total * esize);
  // One receive buffer per peer: gloo reports which rank a completion came from only for the
  // latest one, so per-peer buffers are how we wait for a given peer.
  std::vector<std::unique_ptr<gloo::transport::UnboundBuffer>> slots(peers.size());
  if (mine_bytes > 0) {
    for (size_t k = 0; k < peers.size(); ++k) {
      slots[k] = ctx.createUnboundBuffer(scratch->data() + k * mine_bytes, mine_bytes);
      slots[k]->recv(peers[k], call.slot, 0, mine_bytes);
    }
  }
  int sends = 0;
  for (int peer : peers) {
    const Block& b = blocks[static_cast<size_t>(peer)];
    if (b.count == 0) continue;
    data->send(peer, call.slot, b.offset * esize, b.count * esize);
    ++sends;
  }
  if (mine_bytes > 0) {
    // Reduce in peer order (fixed summation order), each as soon as it has arrived.
    for (size_t k = 0; k < peers.size(); ++k) {
      WaitRecv(*slots[k], call, "direct");
      ReduceInto(base + mine.offset * esize, scratch->data() + k * mine_bytes, mine.count, type,
                 op);
    }
  }
  WaitSends(*data, sends, call, "direct");
}

void AllGather(const ring::RingCall& call, void* buf, const std::vector<Block>& blocks,
               DataType type) {
  const auto [context, p, r, esize, total] = transfer::ShapeOf(call, blocks, type);
  if (p == 1 || total == 0) return;
  gloo::Context& ctx = *context;
  const std::vector<int> peers = PeersAfter(r, p);
  auto data = ctx.createUnboundBuffer(buf, total * esize);
  int recvs = 0;
  for (int peer : peers) {
    const Block& b = blocks[static_cast<size_t>(peer)];
    if (b.count == 0) continue;
    data->recv(peer, call.slot, b.offset * esize, b.count * esize);
    ++recvs;
  }
  const Block& mine = blocks[static_cast<size_t>(r)];
  int sends = 0;
  if (mine.count > 0) {
    for (int peer : peers) {
      data->send(peer, call.slot, mine.offset * esize, mine.count * esize);
      ++sends;
    }
  }
  for (int i = 0; i < recvs; ++i) {
    WaitRecv(*data, call, "direct");
  }
  WaitSends(*data, sends, call, "direct");
}

}  // namespace baton::comm::direct
