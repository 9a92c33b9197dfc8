#include "comm/process_group.h"

#include <gloo/allgather.h>
#include <gloo/allreduce.h>
#include <gloo/alltoall.h>
#include <gloo/alltoallv.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/common/error.h>
#include <gloo/rendezvous/context.h>
#include <gloo/rendezvous/store.h>
#include <gloo/transport/tcp/device.h>
#include <gloo/transport/unbound_buffer.h>

#include <signal.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "comm/direct.h"
#include "comm/reduce.h"
#include "comm/ring.h"

namespace baton::comm {
namespace {

using Clock = std::chrono::steady_clock;

// Slot prefixes for baton's own traffic; gloo's collectives use prefixes 0x01..0x08.
constexpr uint64_t kRingSlotPrefix = 0xB1;
constexpr uint64_t kP2PSlotPrefix = 0xB2;

uint64_t MakeSlot(uint64_t prefix, uint64_t tag) {
  return (prefix << 56) | (tag & ((1ULL << 56) - 1));
}

// Exposes a baton Store to gloo's rendezvous under a key prefix. gloo expects exceptions.
class GlooStore : public gloo::rendezvous::Store {
 public:
  GlooStore(baton::comm::Store& store, std::string prefix, std::chrono::milliseconds timeout)
      : store_(store), prefix_(std::move(prefix)), timeout_(timeout) {}
  void set(const std::string& key, const std::vector<char>& data) override {
    Check(store_.Set(prefix_ + key, std::string(data.begin(), data.end())));
  }
  std::vector<char> get(const std::string& key) override {
    auto v = store_.Get(prefix_ + key, timeout_);
    Check(v.status());
    return std::vector<char>(v->begin(), v->end());
  }
  void wait(const std::vector<std::string>& keys) override { wait(keys, timeout_); }
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& t) override {
    std::vector<std::string> full;
    for (const auto& k : keys) full.push_back(prefix_ + k);
    Check(store_.Wait(full, t));
  }

 private:
  static void Check(const Status& s) {
    if (!s.ok()) throw gloo::IoException("store: " + s.ToString());
  }
  baton::comm::Store& store_;
  std::string prefix_;
  std::chrono::milliseconds timeout_;
};

gloo::AllreduceOptions::Func ReduceFunc(DataType type, ReduceOp op) {
  return [type, op](void* out, const void* a, const void* b, size_t n) {
    if (out != a) std::memmove(out, a, n * ElementSize(type));
    ReduceInto(out, b, n, type, op);
  };
}

// Calls f with a typed null pointer of `type`, for gloo's templated option setters. Those only take
// sizeof(T) from the type, so bf16 travels as uint16_t: gloo never does arithmetic on it (the
// allreduce's reduce function is ours, ReduceFunc).
template <typename F>
void WithType(DataType type, F&& f) {
  switch (type) {
    case DataType::kFloat32:
      return f(static_cast<float*>(nullptr));
    case DataType::kFloat64:
      return f(static_cast<double*>(nullptr));
    case DataType::kInt64:
      return f(static_cast<int64_t*>(nullptr));
    case DataType::kBFloat16:
      return f(static_cast<uint16_t*>(nullptr));
  }
}

}  // namespace

struct ProcessGroup::Impl {
  std::shared_ptr<Store> store;
  GroupOptions options;
  std::shared_ptr<gloo::transport::Device> device;
  std::shared_ptr<gloo::rendezvous::Context> context;
  uint64_t ring_calls = 0;
  // ReduceScatter's working copy, kept between calls: a fresh multi-MiB allocation per call costs
  // page faults on every page (calls on a group never overlap, so one buffer serves all).
  std::vector<char> scratch;
  std::vector<char> direct_scratch;  // direct reduce-scatter's receive slots, kept likewise
  std::vector<char> ring_scratch;    // the ring's receive window, kept likewise
  mutable std::mutex mu;
  Status broken;  // guarded by mu

  std::chrono::milliseconds Timeout(const CallOptions& call) const {
    return call.timeout.count() > 0 ? call.timeout : options.timeout;
  }
  ring::RingCall NextRing(const CallOptions& call) {
    return {context.get(), MakeSlot(kRingSlotPrefix, ring_calls++), Clock::now() + Timeout(call)};
  }
  // baton's in-place block collectives: the ring, or the direct exchange when asked for.
  void ReduceScatter(const CallOptions& call, void* buf, const std::vector<Block>& blocks,
                     DataType type, ReduceOp op) {
    if (call.algorithm == Algorithm::kDirect) {
      direct::ReduceScatter(NextRing(call), buf, blocks, type, op, &direct_scratch);
    } else {
      ring::ReduceScatter(NextRing(call), buf, blocks, type, op, &ring_scratch);
    }
  }
  void AllGather(const CallOptions& call, void* buf, const std::vector<Block>& blocks,
                 DataType type) {
    if (call.algorithm == Algorithm::kDirect) {
      direct::AllGather(NextRing(call), buf, blocks, type);
    } else {
      ring::AllGather(NextRing(call), buf, blocks, type);
    }
  }

  // Runs one collective: refuses on a broken group, converts gloo exceptions to Status and breaks
  // the group on failure (gloo's pairs are unusable after an I/O error).
  template <typename F>
  Status Run(const char* what, F&& f) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!broken.ok()) {
        return Status::FailedPrecondition(std::string(what) + ": group " + options.prefix +
                                          " is broken (" + broken.ToString() +
                                          "); form a new generation");
      }
    }
    Status s;
    try {
      f();
      return Status::Ok();
    } catch (const std::exception& e) {
      const std::string msg = std::string(what) + " on group " + options.prefix + " (rank " +
                              std::to_string(options.rank) + "/" + std::to_string(options.size) +
                              "): " + e.what();
      if (std::strstr(e.what(), "Timed out") != nullptr) {
        s = Status::DeadlineExceeded(msg);
      } else if (dynamic_cast<const gloo::IoException*>(&e) != nullptr) {
        s = Status::Unavailable(msg);
      } else {
        s = Status::Internal(msg);
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    broken = s;
    return s;
  }
};

namespace {

Result<std::shared_ptr<gloo::rendezvous::Context>> Connect(
    Store& store, const std::string& prefix, int rank, int size,
    std::shared_ptr<gloo::transport::Device>& device, std::chrono::milliseconds timeout) {
  try {
    auto ctx = std::make_shared<gloo::rendezvous::Context>(rank, size);
    ctx->setTimeout(timeout);
    GlooStore gs(store, prefix + "/addr/", timeout);
    ctx->connectFullMesh(gs, device);
    return ctx;
  } catch (const std::exception& e) {
    return Status::Unavailable("forming group " + prefix + " (rank " + std::to_string(rank) + "/" +
                               std::to_string(size) + "): " + e.what());
  }
}

}  // namespace

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ProcessGroup::~ProcessGroup() = default;

Result<std::unique_ptr<ProcessGroup>> ProcessGroup::Create(std::shared_ptr<Store> store,
                                                           const GroupOptions& options) {
  if (options.size < 1 || options.rank < 0 || options.rank >= options.size) {
    return Status::InvalidArgument("ProcessGroup: rank " + std::to_string(options.rank) +
                                   " outside size " + std::to_string(options.size));
  }
  if (options.prefix.empty()) return Status::InvalidArgument("ProcessGroup: empty prefix");
  // gloo writes to sockets without MSG_NOSIGNAL on some paths: a write to a dead peer would kill
  // this process with SIGPIPE instead of failing the call. Ignore it unless the program installed
  // a handler of its own.
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
  auto impl = std::make_unique<Impl>();
  impl->store = std::move(store);
  impl->options = options;
  try {
    gloo::transport::tcp::attr attr;
    attr.hostname = options.address;
    impl->device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return Status::Unavailable("ProcessGroup: cannot listen on " + options.address + ": " +
                               e.what());
  }
  BATON_ASSIGN_OR_RETURN(impl->context, Connect(*impl->store, options.prefix, options.rank,
                                                options.size, impl->device, options.timeout));
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

int ProcessGroup::rank() const { return impl_->options.rank; }
int ProcessGroup::size() const { return impl_->options.size; }
const GroupOptions& ProcessGroup::options() const { return impl_->options; }
Status ProcessGroup::health() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->broken;
}

Result<std::unique_ptr<ProcessGroup>> ProcessGroup::NewSubgroup(const std::vector<int>& ranks,
                                                                const std::string& name) {
  auto it = std::find(ranks.begin(), ranks.end(), rank());
  if (it == ranks.end()) {
    return Status::InvalidArgument("NewSubgroup " + name + ": rank " + std::to_string(rank()) +
                                   " is not a member");
  }
  auto impl = std::make_unique<Impl>();
  impl->store = impl_->store;
  impl->options = impl_->options;
  impl->options.prefix = impl_->options.prefix + "/sub/" + name;
  impl->options.rank = static_cast<int>(it - ranks.begin());
  impl->options.size = static_cast<int>(ranks.size());
  impl->device = impl_->device;  // one listening socket per process serves every group
  BATON_ASSIGN_OR_RETURN(impl->context,
                         Connect(*impl->store, impl->options.prefix, impl->options.rank,
                                 impl->options.size, impl->device, impl->options.timeout));
  return std::unique_ptr<ProcessGroup>(new ProcessGroup(std::move(impl)));
}

Status ProcessGroup::Barrier(const CallOptions& call) {
  return impl_->Run("barrier", [&] {
    gloo::BarrierOptions opts(impl_->context);
    opts.setTimeout(impl_->Timeout(call));
    gloo::barrier(opts);
  });
}

Status ProcessGroup::Broadcast(void* buf, size_t count, DataType type, int root,
                               const CallOptions& call) {
  if (root < 0 || root >= size()) return Status::InvalidArgument("broadcast: bad root");
  if (count == 0 || size() == 1) return health();
  return impl_->Run("broadcast", [&] {
    gloo::BroadcastOptions opts(impl_->context);
    WithType(type, [&](auto* t) { opts.setOutput(static_cast<decltype(t)>(buf), count); });
    opts.setRoot(root);
    opts.setTimeout(impl_->Timeout(call));
    gloo::broadcast(opts);
  });
}

Status ProcessGroup::AllReduce(void* buf, size_t count, DataType type, ReduceOp op,
                               const CallOptions& call) {
  if (count == 0) return health();
  Status s;
  if (size() == 1) {
    s = health();
  } else if (call.algorithm == Algorithm::kGloo) {
    s = impl_->Run("allreduce(gloo)", [&] {
      gloo::AllreduceOptions opts(impl_->context);
      WithType(type, [&](auto* t) { opts.setOutput(static_cast<decltype(t)>(buf), count); });
      opts.setReduceFunction(ReduceFunc(type, op));
      opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
      opts.setTimeout(impl_->Timeout(call));
      gloo::allreduce(opts);
    });
  } else {
    const bool direct = call.algorithm == Algorithm::kDirect;
    s = impl_->Run(direct ? "allreduce(direct)" : "allreduce(ring)", [&] {
      auto blocks = Partition(count, size());
      if (direct) {
        impl_->ReduceScatter(call, buf, blocks, type, op);
        impl_->AllGather(call, buf, blocks, type);
      } else {
        const ring::RingCall rs = impl_->NextRing(call), ag = impl_->NextRing(call);
        ring::AllReduce(rs, ag, buf, blocks, type, op, &impl_->ring_scratch);
      }
    });
  }
  if (s.ok() && op == ReduceOp::kAvg) DivideBy(buf, count, type, size());
  return s;
}

Status ProcessGroup::ReduceScatterInPlace(void* buf, size_t count, DataType type, ReduceOp op,
                                          const CallOptions& call) {
  return ReduceScatterBlocks(buf, Partition(count, size()), type, op, call);
}

Status ProcessGroup::AllGatherInPlace(void* buf, size_t count, DataType type,
                                      const CallOptions& call) {
  return AllGatherBlocks(buf, Partition(count, size()), type, call);
}

Status ProcessGroup::ReduceScatterBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                                         ReduceOp op, const CallOptions& call) {
  if (blocks.size() != static_cast<size_t>(size())) {
    return Status::InvalidArgument("reduce_scatter: need one block per rank");
  }
  Status s = impl_->Run(
      call.algorithm == Algorithm::kDirect ? "reduce_scatter(direct)" : "reduce_scatter(ring)",
      [&] { impl_->ReduceScatter(call, buf, blocks, type, op); });
  if (s.ok() && op == ReduceOp::kAvg) {
    const Block& mine = blocks[static_cast<size_t>(rank())];
    DivideBy(static_cast<char*>(buf) + mine.offset * ElementSize(type), mine.count, type, size());
  }
  return s;
}

Status ProcessGroup::AllGatherBlocks(void* buf, const std::vector<Block>& blocks, DataType type,
                                     const CallOptions& call) {
  if (blocks.size() != static_cast<size_t>(size())) {
    return Status::InvalidArgument("all_gather: need one block per rank");
  }
  return impl_->Run(
      call.algorithm == Algorithm::kDirect ? "all_gather(direct)" : "all_gather(ring)",
      [&] { impl_->AllGather(call, buf, blocks, type); });
}

Status ProcessGroup::ReduceScatter(const void* in, void* out, size_t count, DataType type,
                                   ReduceOp op, const CallOptions& call) {
  const size_t esize = ElementSize(type);
  const Block mine = Partition(count, size())[static_cast<size_t>(rank())];
  std::vector<char>& scratch = impl_->scratch;
  if (scratch.size() < count * esize) scratch.resize(count * esize);
  if (count > 0) std::memcpy(scratch.data(), in, count * esize);
  Status s;
  if (call.algorithm == Algorithm::kGloo) {
    // gloo has no new-style reduce-scatter: its allreduce, keeping our block, is the baseline.
    CallOptions c = call;
    s = AllReduce(scratch.data(), count, type, op, c);
  } else {
    s = ReduceScatterInPlace(scratch.data(), count, type, op, call);
  }
  if (s.ok() && mine.count > 0) {
    std::memcpy(out, scratch.data() + mine.offset * esize, mine.count * esize);
  }
  return s;
}

Status ProcessGroup::AllGather(const void* in, void* out, size_t count, DataType type,
                               const CallOptions& call) {
  const size_t esize = ElementSize(type);
  if (count == 0) return health();
  if (call.algorithm == Algorithm::kGloo && size() > 1) {
    return impl_->Run("all_gather(gloo)", [&] {
      gloo::AllgatherOptions opts(impl_->context);
      WithType(type, [&](auto* t) {
        using T = std::remove_pointer_t<decltype(t)>;
        opts.setInput(const_cast<T*>(static_cast<const T*>(in)), count);
        opts.setOutput(static_cast<T*>(out), count * static_cast<size_t>(size()));
      });
      opts.setTimeout(impl_->Timeout(call));
      gloo::allgather(opts);
    });
  }
  std::memcpy(static_cast<char*>(out) + static_cast<size_t>(rank()) * count * esize, in,
              count * esize);
  return AllGatherInPlace(out, count * static_cast<size_t>(size()), type, call);
}

Status ProcessGroup::AllToAll(const void* in, void* out, size_t count, DataType type,
                              const CallOptions& call) {
  if (count == 0) return health();
  const size_t total = count * static_cast<size_t>(size());
  if (size() == 1) {
    std::memcpy(out, in, total * ElementSize(type));
    return health();
  }
  return impl_->Run("all_to_all", [&] {
    gloo::AlltoallOptions opts(impl_->context);
    WithType(type, [&](auto* t) {
      using T = std::remove_pointer_t<decltype(t)>;
      opts.setInput(const_cast<T*>(static_cast<const T*>(in)), total);
      opts.setOutput(static_cast<T*>(out), total);
    });
    opts.setTimeout(impl_->Timeout(call));
    gloo::alltoall(opts);
  });
}

Status ProcessGroup::AllToAllV(const void* in, const std::vector<size_t>& send_counts, void* out,
                               const std::vector<size_t>& recv_counts, DataType type,
                               const CallOptions& call) {
  const size_t n = static_cast<size_t>(size());
  if (send_counts.size() != n || recv_counts.size() != n) {
    return Status::InvalidArgument("all_to_all_v: need one count per rank");
  }
  // Exchanged pairwise over unbound buffers: gloo's alltoallv rejects empty buffers, and zero
  // counts are common (a rank with nothing for a peer).
  const size_t esize = ElementSize(type);
  size_t send_total = 0, recv_total = 0;
  for (size_t j = 0; j < n; ++j) send_total += send_counts[j], recv_total += recv_counts[j];
  return impl_->Run("all_to_all_v", [&] {
    const int me = rank();
    std::vector<size_t> send_off(n, 0), recv_off(n, 0);
    for (size_t j = 1; j < n; ++j) {
      send_off[j] = send_off[j - 1] + send_counts[j - 1];
      recv_off[j] = recv_off[j - 1] + recv_counts[j - 1];
    }
    const auto& own = send_counts[static_cast<size_t>(me)];
    if (own > 0) {
      std::memcpy(static_cast<char*>(out) + recv_off[static_cast<size_t>(me)] * esize,
                  static_cast<const char*>(in) + send_off[static_cast<size_t>(me)] * esize,
                  own * esize);
    }
    if (n == 1) return;
    const auto call_ctx = impl_->NextRing(call);
    std::unique_ptr<gloo::transport::UnboundBuffer> sbuf, rbuf;
    if (send_total > 0) {
      sbuf = impl_->context->createUnboundBuffer(const_cast<void*>(in), send_total * esize);
    }
    if (recv_total > 0) rbuf = impl_->context->createUnboundBuffer(out, recv_total * esize);
    int sends = 0, recvs = 0;
    for (size_t j = 0; j < n; ++j) {
      if (static_cast<int>(j) == me) continue;
      if (recv_counts[j] > 0) {
        rbuf->recv(static_cast<int>(j), call_ctx.slot, recv_off[j] * esize, recv_counts[j] * esize);
        ++recvs;
      }
      if (send_counts[j] > 0) {
        sbuf->send(static_cast<int>(j), call_ctx.slot, send_off[j] * esize, send_counts[j] * esize);
        ++sends;
      }
    }
    auto remaining = [&] {
      return std::max(
          std::chrono::milliseconds(1),
          std::chrono::duration_cast<std::chrono::milliseconds>(call_ctx.deadline - Clock::now()));
    };
    for (int i = 0; i < recvs; ++i) rbuf->waitRecv(remaining());
    for (int i = 0; i < sends; ++i) sbuf->waitSend(remaining());
  });
}

Status ProcessGroup::Send(const void* buf, size_t count, DataType type, int dst, uint32_t tag,
                          const CallOptions& call) {
  if (dst < 0 || dst >= size() || dst == rank()) return Status::InvalidArgument("send: bad peer");
  if (count == 0) return health();
  return impl_->Run("send", [&] {
    auto ub =
        impl_->context->createUnboundBuffer(const_cast<void*>(buf), count * ElementSize(type));
    ub->send(dst, MakeSlot(kP2PSlotPrefix, tag));
    ub->waitSend(impl_->Timeout(call));
  });
}

Status ProcessGroup::Recv(void* buf, size_t count, DataType type, int src, uint32_t tag,
                          const CallOptions& call) {
  if (src < 0 || src >= size() || src == rank()) return Status::InvalidArgument("recv: bad peer");
  if (count == 0) return health();
  return impl_->Run("recv", [&] {
    auto ub = impl_->context->createUnboundBuffer(buf, count * ElementSize(type));
    ub->recv(src, MakeSlot(kP2PSlotPrefix, tag));
    ub->waitRecv(impl_->Timeout(call));
  });
}

}  // namespace baton::comm
