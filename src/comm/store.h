// The bootstrap store: a tiny key-value service every rank of a job can reach.
//
// Ranks publish their transport addresses in it and meet there to form a group. Groups are formed
// under a generation prefix ("job/gen3/"), so that after a failure the survivors re-form under a
// new prefix without tripping over the keys of the broken generation. The master will implement
// this interface later; FileStore serves tests, benchmarks and single-host runs.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace baton::comm {

class Store {
 public:
  // Used when a caller does not pass a timeout of its own.
  static constexpr std::chrono::milliseconds kDefaultTimeout{30000};

  virtual ~Store() = default;

  // Creates or overwrites `key`.
  virtual Status Set(const std::string& key, const std::string& value) = 0;
  // Waits until `key` exists and returns its value; kDeadlineExceeded after `timeout`.
  virtual Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) = 0;
  // Waits until every key exists; kDeadlineExceeded after `timeout`.
  virtual Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) = 0;
  // Atomically adds `delta` to the integer stored at `key` (0 if absent) and returns the new value.
  virtual Result<int64_t> Add(const std::string& key, int64_t delta) = 0;
};

}  // namespace baton::comm
