// RendezvousHost: the master's side of RendezvousService. It serializes the rendezvous state
// machine (rendezvous.h) and the bootstrap key-value store (kv_store.h) under one lock, checks
// requests, and makes what it answers durable first: a formed generation and every KV write reach
// the state store before the reply (the caller waits for the returned sequence number), so a
// master killed at any moment comes back with the generation its workers are training in and the
// addresses they published.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "baton/v1/baton.pb.h"
#include "common/status.h"
#include "master/kv_store.h"
#include "master/rendezvous.h"
#include "master/state_store.h"

namespace baton::master {

class RendezvousHost {
 public:
  RendezvousHost(RendezvousOptions options, StateStore& store) : rdzv_(options), store_(store) {}

  // Before serving: the generation and the KV of an earlier life of this master.
  Status Restore(const std::map<std::string, std::string>& meta_values);

  // Handlers. `seq`: the store sequence number to wait for before answering (0: none).
  // `node_rank`: the rank of the caller's node (the caller checked the worker id).
  Status Join(const v1::JoinRequest& req, int32_t node_rank, int32_t local_rank, int64_t now_ms,
              v1::JoinReply* reply, uint64_t* seq);
  void GetGeneration(v1::Generation* reply);
  Status KvSet(const v1::KvSetRequest& req, uint64_t* seq);
  Status KvGet(const v1::KvGetRequest& req, v1::KvGetReply* reply);
  Status KvAdd(const v1::KvAddRequest& req, v1::KvAddReply* reply, uint64_t* seq);

  // Membership, from the master's monitor and handlers. Each returns the sequence number that
  // makes its change durable (0: nothing changed).
  uint64_t Leave(const std::string& worker_id, const std::string& reason, int64_t now_ms);
  // Every member and waiting worker whose id starts with `prefix` ("<node_id>/").
  uint64_t LeaveNode(const std::string& node_id, const std::string& reason, int64_t now_ms);
  uint64_t End(const std::string& reason);
  uint64_t SetPlanned(std::vector<RendezvousMember> planned, bool complete, int64_t now_ms);

  int64_t generation_id() const;

 private:
  // Persists the generation if it changed; a newly formed one also drops older KV scopes.
  uint64_t PersistLocked();
  Status CheckScopeLocked(int64_t generation) const;

  mutable std::mutex mu_;
  Rendezvous rdzv_;
  KvStore kv_;
  StateStore& store_;
  int64_t persisted_id_ = 0;     // generation id last written to the store
  uint64_t generation_seq_ = 0;  // the store sequence number of that write
};

// The key under which the generation is kept in the state store's job-level values.
inline constexpr const char* kGenerationMetaKey = "rendezvous.generation";

}  // namespace baton::master
