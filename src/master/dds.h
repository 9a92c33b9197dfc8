// Stateful Dynamic Data Sharding: the queue bookkeeping of a job's shards.
//
// Workers pull: Lease hands out the next TODO shard with a fresh fencing token and a deadline, so
// fast workers take more shards and slow ones fewer. A shard whose lease is lost (failure, expiry,
// worker or node death) returns to the front of the queue until its retry budget is spent, then
// goes to the dead-letter list; nothing is dropped silently. Every transition is appended to the
// StateStore under the DDS lock, so the store sees transitions in the order they happened; callers
// must WaitDurable(seq) before acknowledging anything to a worker.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/status.h"
#include "master/shard.h"
#include "master/splitter.h"
#include "master/state_store.h"

namespace baton::master {

struct DdsOptions {
  int64_t lease_ms = 30000;        // lease length; renewals extend by the same amount
  int32_t max_shard_retries = 3;   // failed attempts beyond the first before dead-lettering
  int32_t max_error_bytes = 1024;  // failure reasons are truncated to this
};

// How the job's shards are laid out when it is created; ignored when resuming.
struct ShardLayout {
  int32_t epochs = 1;
  bool shuffle = false;
  uint64_t seed = 0;
};

struct LeaseOutcome {
  enum Kind { kLeased, kWait, kEnd } kind = kEnd;
  Shard shard;       // when kLeased
  uint64_t seq = 0;  // wait for this before replying
};

struct DdsCounts {
  uint64_t total = 0, todo = 0, doing = 0, done = 0, dead = 0;
  uint64_t records_total = 0, records_done = 0;
  uint64_t leases_granted = 0, leases_expired = 0, commits_fenced = 0, requeues = 0;
};

// A lease that was taken away (expired, revoked, released): its staged output, if any, is garbage.
struct LostLease {
  uint64_t shard_id;
  uint64_t token;
};

struct DeadLetterInfo {
  uint64_t shard_id;
  int32_t attempts;
  std::string last_error;
};

class Dds {
 public:
  // Creates the job in `store` (splitting the dataset) or resumes the one it holds. Resuming
  // keeps every DOING shard leased to its worker with a deadline of now + lease_ms, so the worker
  // can renew and commit after the master restart.
  static Result<std::unique_ptr<Dds>> Open(StateStore* store, DdsOptions options,
                                           const JobMeta& meta, DatasetSplitter* splitter,
                                           const ShardLayout& layout, int64_t now_ms);

  // Tokens are unguessable and bound to the worker that leased: renew, commit and fail succeed only
  // for that worker presenting that token. The high 32 bits of a token count leases (so tokens
  // grow and are never reused, even across restarts); the low 32 bits are random, so a client
  // holding the job secret cannot take over another worker's lease by guessing.
  LeaseOutcome Lease(std::string_view worker, int64_t now_ms);

  // Extends the lease; FENCED if `worker` does not hold the shard under `token`. Not persisted.
  Result<int64_t> Renew(uint64_t shard_id, uint64_t token, std::string_view worker, int64_t now_ms);

  struct CommitOutcome {
    uint64_t seq = 0;
    bool already_committed = false;  // a retry of a commit that already succeeded
    Shard shard;
  };
  // DOING -> DONE if `worker` holds the lease under `token`. A retried commit of the same token
  // succeeds again.
  Result<CommitOutcome> Commit(uint64_t shard_id, uint64_t token, std::string_view worker);

  struct FailOutcome {
    uint64_t seq = 0;
    bool dead_lettered = false;
  };
  Result<FailOutcome> Fail(uint64_t shard_id, uint64_t token, std::string_view worker,
                           std::string_view reason);

  // Re-queues leases past their deadline. Returns the seq to wait for (0 if nothing changed).
  // Every revocation below appends the leases it took to `lost` (when given), so the caller can
  // delete their staged outputs.
  uint64_t ExpireLeases(int64_t now_ms, std::vector<LostLease>* lost = nullptr);
  // Re-queues every lease held by `worker` (it exited) or by any worker whose id starts with
  // `prefix` (its node died).
  uint64_t RevokeWorker(std::string_view worker, std::string_view reason,
                        std::vector<LostLease>* lost = nullptr);
  uint64_t RevokeWorkersWithPrefix(std::string_view prefix, std::string_view reason,
                                   std::vector<LostLease>* lost = nullptr);
  // Returns every DOING shard to the queue without charging its retry budget: for a master that
  // knows no worker of an earlier run survives (a fresh `baton run` of the job), so the leases it
  // recovered can never be committed and waiting for their deadlines would only stall the job.
  uint64_t ReleaseAllLeases(int* released = nullptr);
  // Gives every dead-lettered shard a fresh retry budget and queues it again: a fresh run of a job
  // whose shards failed for a cause since fixed (a full disk, a bug in the worker) retries them
  // instead of ending FAILED at once. Their last reasons stay in the store until they fail again.
  uint64_t RetryDeadLetters(int* retried = nullptr);

  // Event counters (granted, expired, fenced, re-queued) survive a master restart through the
  // store's meta values; these read and restore them.
  static std::string EncodeEventCounters(const DdsCounts& c);
  void RestoreEventCounters(std::string_view encoded);

  DdsCounts Counts() const;
  std::vector<DeadLetterInfo> DeadLetters(size_t limit) const;
  bool Finished() const;  // every shard DONE or DEAD
  // Shard by id (a copy), for recovery of outputs.
  std::optional<Shard> Get(uint64_t shard_id) const;
  int64_t lease_ms() const { return options_.lease_ms; }

 private:
  Dds(StateStore* store, DdsOptions options);
  uint32_t InternWorker(std::string_view worker);
  // Lease lost without a commit: back to the front of the queue, or dead-lettered.
  uint64_t RequeueLocked(Shard& s, std::string_view reason, bool* dead);
  uint64_t AppendLocked(const Shard& s, std::string error = {});
  // The shard if `worker` holds it under `token`; FENCED (the same answer whatever is wrong, so a
  // prober learns nothing) otherwise.
  Result<Shard*> HeldLocked(uint64_t shard_id, uint64_t token, std::string_view worker,
                            const char* verb);
  uint64_t NextTokenLocked();
  template <typename Pred>
  uint64_t RevokeLocked(Pred pred, std::string_view reason, std::vector<LostLease>* lost);

  StateStore* store_;
  DdsOptions options_;
  mutable std::mutex mu_;
  std::vector<Shard> shards_;  // indexed by id
  std::deque<uint64_t> todo_;  // lease order; re-queued shards go to the front
  std::unordered_set<uint64_t> doing_;
  std::unordered_map<uint64_t, std::string> dead_errors_;  // capped reasons of dead shards
  std::vector<std::string> worker_names_;
  std::unordered_map<std::string, uint32_t> worker_index_;
  uint64_t next_lease_seq_ = 1;  // high half of the next token
  DdsCounts counts_;
};

}  // namespace baton::master
