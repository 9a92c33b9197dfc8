// KvStore: the master's bootstrap key-value store, in which the members of a rendezvous generation
// publish their transport addresses (gloo, HO-Ring) so that process groups form across machines
// without a shared filesystem. Keys live in a scope, the id of the generation that wrote them;
// scopes of ended generations are dropped when the next forms, so a re-formed group never reads a
// stale address. Scope 0 (kJobScope) is the job's own and is never dropped: what must outlive
// generations (a training job's checkpoint lineage, train/checkpointer.h). Bounded (kv limits
// below): a worker that writes too much is refused, never the master's memory. Not thread-safe: the
// rendezvous host serializes calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "common/status.h"

namespace baton::master {

struct KvLimits {
  size_t max_key_bytes = 512;
  size_t max_value_bytes = 512 << 10;
  size_t max_scope_keys = 65536;
  size_t max_scope_bytes = 64 << 20;  // keys and values of one scope
};

inline constexpr int64_t kJobScope = 0;

class KvStore {
 public:
  explicit KvStore(KvLimits limits = {}) : limits_(limits) {}

  // Creates or replaces `key`. kInvalidArgument for an empty or oversized key or value,
  // kFailedPrecondition when the scope would exceed its key count or bytes.
  Status Set(int64_t scope, const std::string& key, std::string value);
  std::optional<std::string> Get(int64_t scope, const std::string& key) const;
  // Adds `delta` to the decimal integer at `key` (0 when absent) and returns the new value;
  // kFailedPrecondition if the key holds something else, kInvalidArgument on overflow.
  Result<int64_t> Add(int64_t scope, const std::string& key, int64_t delta);
  // Drops every generation scope below `scope` (never kJobScope).
  void DropBelow(int64_t scope);

  size_t keys(int64_t scope) const;

 private:
  struct Scope {
    std::map<std::string, std::string> values;
    size_t bytes = 0;
  };
  KvLimits limits_;
  std::map<int64_t, Scope> scopes_;
};

}  // namespace baton::master
