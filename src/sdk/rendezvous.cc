#include "sdk/rendezvous.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/grpc_util.h"

namespace baton::sdk {

struct RendezvousChannel {
  std::string token;
  std::chrono::milliseconds unreachable;
  std::unique_ptr<v1::RendezvousService::Stub> stub;

  // One idempotent call, retried while the master is unreachable.
  Status Call(const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
    return RetryIdempotent(
        [&] {
          grpc::ClientContext ctx;
          PrepareContext(ctx, token);
          return FromGrpc(rpc(&ctx));
        },
        unreachable);
  }
};

namespace {

// comm::Store over the master's KV, scoped to one generation. Waits poll: the master answers every
// call at once (its handlers never block), and a group forms in a few round trips.
class MasterStore final : public comm::Store {
 public:
  MasterStore(std::shared_ptr<RendezvousChannel> impl, int64_t generation)
      : impl_(std::move(impl)), generation_(generation) {}

  Status Set(const std::string& key, const std::string& value) override {
    v1::KvSetRequest req;
    req.set_generation(generation_);
    req.set_key(key);
    req.set_value(value);
    v1::KvSetReply reply;
    return impl_
        ->Call([&](grpc::ClientContext* ctx) { return impl_->stub->KvSet(ctx, req, &reply); })
        .WithContext("kv set in generation " + std::to_string(generation_));
  }

  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override {
    BATON_ASSIGN_OR_RETURN(std::vector<std::string> values, WaitFor({key}, timeout));
    return std::move(values[0]);
  }

  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    if (keys.empty()) return Status::Ok();
    return WaitFor(keys, timeout).status();
  }

  // Not retried: an add that reached the master before its reply was lost would count twice.
  Result<int64_t> Add(const std::string& key, int64_t delta) override {
    v1::KvAddRequest req;
    req.set_generation(generation_);
    req.set_key(key);
    req.set_delta(delta);
    v1::KvAddReply reply;
    grpc::ClientContext ctx;
    PrepareContext(ctx, impl_->token);
    BATON_RETURN_IF_ERROR(FromGrpc(impl_->stub->KvAdd(&ctx, req, &reply))
                              .WithContext("kv add in generation " + std::to_string(generation_)));
    return reply.value();
  }

 private:
  Result<std::vector<std::string>> WaitFor(const std::vector<std::string>& keys,
                                           std::chrono::milliseconds timeout) {
    v1::KvGetRequest req;
    req.set_generation(generation_);
    for (const std::string& k : keys) req.add_keys(k);
    const int64_t deadline = MonoMillis() + timeout.count();
    std::chrono::milliseconds pause(1);
    while (true) {
      v1::KvGetReply reply;
      BATON_RETURN_IF_ERROR(
          impl_
              ->Call([&](grpc::ClientContext* ctx) { return impl_->stub->KvGet(ctx, req, &reply); })
              .WithContext("kv get in generation " + std::to_string(generation_)));
      if (reply.found())
        return std::vector<std::string>(reply.values().begin(), reply.values().end());
      if (MonoMillis() >= deadline) {
        return Status::DeadlineExceeded("kv keys of generation " + std::to_string(generation_) +
                                        " (first: \"" + keys[0] + "\") not all set within " +
                                        std::to_string(timeout.count()) + " ms");
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(20));
    }
  }

  std::shared_ptr<RendezvousChannel> impl_;
  int64_t generation_;
};

}  // namespace

int Generation::local_size() const {
  if (rank < 0) return 0;
  const int32_t node = members[rank].node_rank;
  return static_cast<int>(std::count_if(members.begin(), members.end(),
                                        [&](const auto& m) { return m.node_rank == node; }));
}

int Generation::local_rank() const {
  if (rank < 0) return -1;
  const int32_t node = members[rank].node_rank;
  return static_cast<int>(std::count_if(members.begin(), members.begin() + rank,
                                        [&](const auto& m) { return m.node_rank == node; }));
}

int Generation::nodes() const {
  std::set<int32_t> distinct;
  for (const auto& m : members) distinct.insert(m.node_rank);
  return static_cast<int>(distinct.size());
}

Rendezvous::Rendezvous(WorkerIdentity identity)
    : identity_(std::move(identity)), impl_(std::make_shared<RendezvousChannel>()) {}

Rendezvous::~Rendezvous() = default;

Result<std::unique_ptr<Rendezvous>> Rendezvous::Connect(const WorkerIdentity& identity) {
  std::unique_ptr<Rendezvous> r(new Rendezvous(identity));
  r->impl_->token = identity.token;
  r->impl_->unreachable = std::chrono::milliseconds(identity.master_unreachable_ms);
  r->impl_->stub = v1::RendezvousService::NewStub(MakeChannel(identity.master_address));
  return r;
}

Result<Generation> Rendezvous::Join(std::chrono::milliseconds timeout,
                                    std::chrono::milliseconds poll) {
  v1::JoinRequest req;
  req.set_worker_id(identity_.worker_id);
  req.set_known_generation(known_generation_);
  const int64_t deadline = MonoMillis() + timeout.count();
  v1::JoinReply reply;
  bool sent = false;
  while (true) {
    BATON_RETURN_IF_ERROR(impl_
                              ->Call([&](grpc::ClientContext* ctx) {
                                // A retried first call may have reached the master: from the
                                // second send on, this process is waiting (polling).
                                if (sent) req.set_polling(true);
                                sent = true;
                                reply.Clear();
                                return impl_->stub->Join(ctx, req, &reply);
                              })
                              .WithContext("join a generation at " + identity_.master_address));
    if (reply.formed()) break;
    req.set_polling(true);
    if (MonoMillis() >= deadline) {
      return Status::DeadlineExceeded(
          "no generation formed within " + std::to_string(timeout.count()) + " ms (" +
          std::to_string(reply.waiting()) + " of " + std::to_string(reply.planned()) +
          " planned worker(s) joined)");
    }
    std::this_thread::sleep_for(poll);
  }
  Generation g;
  g.id = reply.generation().id();
  g.rank = reply.rank();
  for (const auto& m : reply.generation().members()) {
    g.members.push_back({m.worker_id(), m.node_rank(), m.local_rank()});
  }
  known_generation_ = g.id;
  return g;
}

Result<v1::Generation> Rendezvous::Current() {
  v1::GetGenerationRequest req;
  v1::Generation reply;
  BATON_RETURN_IF_ERROR(impl_->Call(
      [&](grpc::ClientContext* ctx) { return impl_->stub->GetGeneration(ctx, req, &reply); }));
  return reply;
}

Result<bool> Rendezvous::Active(int64_t id) {
  BATON_ASSIGN_OR_RETURN(v1::Generation g, Current());
  return g.id() == id && g.active();
}

Result<std::string> Rendezvous::EndReason() {
  BATON_ASSIGN_OR_RETURN(v1::Generation g, Current());
  return g.active() ? std::string() : g.end_reason();
}

struct GenerationWatch::State {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
};

GenerationWatch::GenerationWatch(std::shared_ptr<RendezvousChannel> channel, int64_t id,
                                 std::chrono::milliseconds period)
    : state_(std::make_shared<State>()) {
  thread_ = std::thread([this, channel = std::move(channel), id, period, state = state_] {
    std::unique_lock<std::mutex> lock(state->mu);
    while (!state->stop && !ended_) {
      lock.unlock();
      v1::GetGenerationRequest req;
      v1::Generation reply;
      grpc::ClientContext ctx;
      PrepareContext(ctx, channel->token, std::max(period, std::chrono::milliseconds(1000)));
      // One attempt per period: an unreachable master says nothing about the generation.
      if (channel->stub->GetGeneration(&ctx, req, &reply).ok()) {
        if (reply.id() != id || !reply.active()) ended_ = true;
      }
      lock.lock();
      state->cv.wait_for(lock, period, [&] { return state->stop; });
    }
  });
}

GenerationWatch::~GenerationWatch() {
  {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  thread_.join();
}

std::unique_ptr<GenerationWatch> Rendezvous::Watch(int64_t id, std::chrono::milliseconds period) {
  return std::make_unique<GenerationWatch>(impl_, id, period);
}

std::shared_ptr<comm::Store> Rendezvous::Store(int64_t id) {
  return std::make_shared<MasterStore>(impl_, id);
}

Result<std::optional<std::string>> Rendezvous::ReadJobValue(const std::string& key,
                                                            std::chrono::milliseconds deadline) {
  v1::KvGetRequest req;
  req.set_generation(0);  // the job scope (master/kv_store.h)
  req.add_keys(key);
  v1::KvGetReply reply;
  grpc::ClientContext ctx;
  PrepareContext(ctx, impl_->token, deadline);
  BATON_RETURN_IF_ERROR(
      FromGrpc(impl_->stub->KvGet(&ctx, req, &reply)).WithContext("reading " + key));
  if (!reply.found() || reply.values_size() != 1) return std::optional<std::string>();
  return std::optional<std::string>(reply.values(0));
}

}  // namespace baton::sdk
