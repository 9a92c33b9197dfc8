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

  LeaseOutcome Lease(std::string_view worker, int64_t now_ms);

  // Extends the lease; FENCED if the token is not the shard's current lease. Not persisted.
  Result<int64_t> Renew(uint64_t shard_id, uint64_t token, int64_t now_ms);

  struct CommitOutcome {
    uint64_t seq = 0;
    bool already_committed = false;  // a retry of a commit that already succeeded
    Shard shard;
  };
  // DOING -> DONE if `token` holds the lease. A retried commit of the same token succeeds again.
  Result<CommitOutcome> Commit(uint64_t shard_id, uint64_t token);

  struct FailOutcome {
    uint64_t seq = 0;
    bool dead_lettered = false;
  };
  Result<FailOutcome> Fail(uint64_t shard_id, uint64_t token, std::string_view reason);

  // Re-queues leases past their deadline. Returns the seq to wait for (0 if nothing changed).
  uint64_t ExpireLeases(int64_t now_ms, int* expired = nullptr);
  // Re-queues every lease held by `worker` (it exited) or by any worker whose id starts with
  // `prefix` (its node died).
  uint64_t RevokeWorker(std::string_view worker, std::string_view reason, int* revoked = nullptr);
  uint64_t RevokeWorkersWithPrefix(std::string_view prefix, std::string_view reason,
                                   int* revoked = nullptr);
  // Returns every DOING shard to the queue without charging its retry budget: for a master that
  // knows no worker of an earlier run survives (a fresh `baton run` of the job), so the leases it
  // recovered can never be committed and waiting for their deadlines would only stall the job.
  uint64_t ReleaseAllLeases(int* released = nullptr);

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
  template <typename Pred>
  uint64_t RevokeLocked(Pred pred, std::string_view reason, int* revoked);

  StateStore* store_;
  DdsOptions options_;
  mutable std::mutex mu_;
  std::vector<Shard> shards_;  // indexed by id
  std::deque<uint64_t> todo_;  // lease order; re-queued shards go to the front
  std::unordered_set<uint64_t> doing_;
  std::unordered_map<uint64_t, std::string> dead_errors_;  // capped reasons of dead shards
  std::vector<std::string> worker_names_;
  std::unordered_map<std::string, uint32_t> worker_index_;
  uint64_t next_token_ = 1;
  DdsCounts counts_;
};

}  // namespace baton::master
