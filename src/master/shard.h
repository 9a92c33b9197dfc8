// A shard and its life cycle: TODO -> DOING (leased, with a fencing token and a deadline) -> DONE,
// or DEAD (dead-lettered) once its retry budget is spent.
#pragma once

#include <cstdint>
#include <string>

#include "master/splitter.h"

namespace baton::master {

enum class ShardState : uint8_t { kTodo = 0, kDoing = 1, kDone = 2, kDead = 3 };

const char* ShardStateName(ShardState s);

inline constexpr uint32_t kNoWorker = UINT32_MAX;

// In-memory shard record. Kept small (about 64 bytes) so that a million pending shards cost tens of
// megabytes; failure reasons live only in the state store.
struct Shard {
  uint64_t id = 0;
  RecordRange range;
  uint32_t epoch = 0;
  ShardState state = ShardState::kTodo;
  uint16_t attempts = 0;        // leases granted so far
  uint64_t token = 0;           // token of the current (or committing) lease; 0 if never leased
  int64_t deadline_ms = 0;      // wall clock; meaningful while DOING
  uint32_t worker = kNoWorker;  // interned worker id while DOING
};

}  // namespace baton::master
