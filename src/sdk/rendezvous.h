// Rendezvous from a worker: join a generation of the workers that train together, and bootstrap
// process groups through the master's key-value store (no shared filesystem needed).
//
//   auto rdzv = sdk::Rendezvous::Connect(identity);
//   auto gen = (*rdzv)->Join(std::chrono::minutes(5));        // blocks until the master forms it
//   comm::GroupOptions o{.prefix = "dp", .rank = gen->rank, .size = gen->size()};
//   auto group = comm::ProcessGroup::Create((*rdzv)->Store(gen->id), o);
//   ... train; when a collective fails or Active(gen->id) is false, Join again ...
//
// The master (master/rendezvous.h) decides: a generation forms once every planned worker joined
// (or after rendezvous.timeout_ms with rendezvous.min_workers) and ends on any membership change.
// Ranks follow (node rank, local rank), so a rank's node and local index are in `members`.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "comm/store.h"
#include "common/status.h"
#include "sdk/worker.h"

namespace baton::v1 {
class Generation;
}

namespace baton::sdk {

struct GenerationMember {
  std::string worker_id;
  int32_t node_rank = 0;
  int32_t local_rank = 0;
};

struct Generation {
  int64_t id = 0;
  int rank = -1;                          // this worker's rank
  std::vector<GenerationMember> members;  // index = rank
  int size() const { return static_cast<int>(members.size()); }
  // Members on this worker's node, and this worker's index among them.
  int local_size() const;
  int local_rank() const;
  // Distinct nodes, in rank order.
  int nodes() const;
};

struct RendezvousChannel;  // the stub and token, shared with the stores handed out

// Watches one generation from a background thread: ended() turns true within `period` of the
// master ending it. A training loop checks it between steps (a flag read, no call), and leaves a
// generation that a scale-up or a controller ended even though its own collectives still work.
class GenerationWatch {
 public:
  GenerationWatch(std::shared_ptr<RendezvousChannel> channel, int64_t id,
                  std::chrono::milliseconds period);
  ~GenerationWatch();
  GenerationWatch(const GenerationWatch&) = delete;
  GenerationWatch& operator=(const GenerationWatch&) = delete;
  bool ended() const { return ended_.load(std::memory_order_relaxed); }

 private:
  struct State;
  std::shared_ptr<State> state_;
  std::atomic<bool> ended_{false};
  std::thread thread_;
};

class Rendezvous {
 public:
  ~Rendezvous();
  // Leaves the process's parent-death setup to Worker::Connect; this only opens a channel.
  static Result<std::unique_ptr<Rendezvous>> Connect(const WorkerIdentity& identity);

  // Joins the next generation and waits (polling every `poll`) until the master forms it.
  // kDeadlineExceeded after `timeout`; retries an unreachable master meanwhile.
  Result<Generation> Join(std::chrono::milliseconds timeout,
                          std::chrono::milliseconds poll = std::chrono::milliseconds(20));
  // Whether generation `id` is still active (one call). A worker checks it between steps, or
  // after a collective failed, to tell a membership change from a fault of its own.
  Result<bool> Active(int64_t id);
  // A background watch of generation `id` (see GenerationWatch); an unreachable master is not
  // an end (the generation survives master restarts).
  std::unique_ptr<GenerationWatch> Watch(
      int64_t id, std::chrono::milliseconds period = std::chrono::milliseconds(200));
  // Why the last generation ended (empty while it is active).
  Result<std::string> EndReason();
  // The bootstrap store of generation `id`: its keys are the generation's, dropped when the next
  // forms; calls fail with kFailedPrecondition once `id` is no longer active.
  std::shared_ptr<comm::Store> Store(int64_t id);
  // `key` of the job scope (values the master's policies publish, e.g. train's batch plan): one
  // attempt within `deadline`, never retried, so that a background reader never hangs on an
  // absent master. nullopt when the key is not set. Safe from any thread.
  Result<std::optional<std::string>> ReadJobValue(const std::string& key,
                                                  std::chrono::milliseconds deadline);

  // The last generation this process belonged to (0: none).
  int64_t known_generation() const { return known_generation_; }

 private:
  explicit Rendezvous(WorkerIdentity identity);
  // The master's current generation (one call, retried while it is unreachable).
  Result<v1::Generation> Current();
  WorkerIdentity identity_;
  int64_t known_generation_ = 0;
  std::shared_ptr<RendezvousChannel> impl_;
};

}  // namespace baton::sdk
