// Durable state of one job's DDS. The master keeps the live state in memory and appends every
// shard transition here; an RPC is answered only after its transition is durable, so a master
// killed at any instant resumes from the store without losing anything it acknowledged.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "master/shard.h"

namespace baton::master {

struct JobMeta {
  std::string job_id;
  // Hash of everything that decides the shard ranges (files, sizes, split options). A restart
  // with a different fingerprint is refused: the persisted ranges would no longer match the data.
  std::string fingerprint;
  std::vector<std::string> files;
};

// A shard transition to persist. Renewals are not persisted: a restarted master gives every
// DOING shard a fresh deadline, so the exact deadline never needs to survive a crash.
struct ShardUpdate {
  uint64_t id = 0;
  ShardState state = ShardState::kTodo;
  uint16_t attempts = 0;
  uint64_t token = 0;
  std::string worker;  // holder while DOING, empty otherwise
  std::string error;   // last failure reason, already capped; empty keeps the stored one
};

struct StoredShard {
  Shard shard;
  std::string worker;
  std::string error;
};

class StateStore {
 public:
  virtual ~StateStore() = default;

  // The job this store holds, or nullopt for a new store.
  virtual Result<std::optional<JobMeta>> LoadMeta() = 0;
  // Writes the job and all its shards in one transaction.
  virtual Status CreateJob(const JobMeta& meta, const std::vector<Shard>& shards) = 0;
  // Streams every shard, in id order.
  virtual Status LoadShards(const std::function<void(StoredShard&&)>& sink) = 0;
  // Queues a transition and returns its sequence number. Transitions become durable in the order
  // they were appended.
  virtual uint64_t Append(ShardUpdate update) = 0;
  // Queues a job-level value (key -> value, replacing the stored one) in the same order as shard
  // transitions; durable like them.
  virtual uint64_t AppendMeta(std::string key, std::string value) = 0;
  // The values written with AppendMeta (counters, running time), by key.
  virtual Result<std::map<std::string, std::string>> LoadMetaValues() = 0;
  // Queues a node's rank. Ranks are handed out once per node id for the life of the job, so the
  // master must keep them across restarts: workers' global ranks are built from them.
  virtual uint64_t AppendNodeRank(std::string node_id, int32_t rank) = 0;
  virtual Result<std::map<std::string, int32_t>> LoadNodeRanks() = 0;
  // The rendezvous key-value store (kv_store.h): values by (scope, key), where a scope is a
  // generation id. Queued and durable like shard transitions. EraseBelow drops every scope below
  // `scope` (ended generations).
  virtual uint64_t AppendKv(int64_t scope, std::string key, std::string value) = 0;
  virtual uint64_t AppendKvEraseBelow(int64_t scope) = 0;
  // Streams every stored (scope, key, value). Called before serving starts.
  virtual Status LoadKv(const std::function<void(int64_t, std::string, std::string)>& sink) = 0;
  // Blocks until every transition up to `seq` is durable, or the store has failed.
  virtual Status WaitDurable(uint64_t seq) = 0;
  // Calls `done` once every transition up to `seq` is durable (OK) or the store has failed: inline
  // if that is already so or if this caller ends up committing, else from the thread of whichever
  // caller commits it. `done` must not block.
  virtual void WhenDurable(uint64_t seq, std::function<void(const Status&)> done) = 0;
};

struct SqliteStoreOptions {
  // false (default): SQLite WAL with synchronous=NORMAL. A crash of the master process loses
  // nothing acknowledged; a crash of the machine may lose the last acknowledged transitions (their
  // shards are then simply redone, so outputs stay exactly-once). true: fsync every group commit.
  bool fsync_each_commit = false;
};

// SQLite (WAL) store at `path`. Whichever waiting caller finds no transaction in progress commits
// everything appended so far in one transaction (group commit), which is what makes durable leases
// cheap.
Result<std::unique_ptr<StateStore>> OpenSqliteStateStore(const std::string& path,
                                                         SqliteStoreOptions options = {});

}  // namespace baton::master
