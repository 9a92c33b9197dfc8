#include "master/kv_store.h"

#include <charconv>
#include <limits>

namespace baton::master {

Status KvStore::Set(int64_t scope, const std::string& key, std::string value) {
  if (key.empty() || key.size() > limits_.max_key_bytes) {
    return Status::InvalidArgument("kv key must be 1-" + std::to_string(limits_.max_key_bytes) +
                                   " bytes, got " + std::to_string(key.size()));
  }
  if (value.size() > limits_.max_value_bytes) {
    return Status::InvalidArgument("kv value must be at most " +
                                   std::to_string(limits_.max_value_bytes) + " bytes, got " +
                                   std::to_string(value.size()));
  }
  Scope& s = scopes_[scope];
  auto it = s.values.find(key);
  const size_t old_bytes = it == s.values.end() ? 0 : key.size() + it->second.size();
  const size_t new_bytes = s.bytes - old_bytes + key.size() + value.size();
  if (it == s.values.end() && s.values.size() >= limits_.max_scope_keys) {
    return Status::FailedPrecondition("kv scope " + std::to_string(scope) + " already holds " +
                                      std::to_string(s.values.size()) + " keys (the limit)");
  }
  if (new_bytes > limits_.max_scope_bytes) {
    return Status::FailedPrecondition("kv scope " + std::to_string(scope) + " would hold " +
                                      std::to_string(new_bytes) + " bytes, over its limit of " +
                                      std::to_string(limits_.max_scope_bytes));
  }
  s.bytes = new_bytes;
  s.values[key] = std::move(value);
  return Status::Ok();
}

std::optional<std::string> KvStore::Get(int64_t scope, const std::string& key) const {
  auto s = scopes_.find(scope);
  if (s == scopes_.end()) return std::nullopt;
  auto it = s->second.values.find(key);
  if (it == s->second.values.end()) return std::nullopt;
  return it->second;
}

Result<int64_t> KvStore::Add(int64_t scope, const std::string& key, int64_t delta) {
  int64_t value = 0;
  if (std::optional<std::string> old = Get(scope, key)) {
    const char* end = old->data() + old->size();
    auto [ptr, ec] = std::from_chars(old->data(), end, value);
    if (ec != std::errc() || ptr != end) {
      return Status::FailedPrecondition("kv key does not hold a decimal integer");
    }
  }
  if ((delta > 0 && value > std::numeric_limits<int64_t>::max() - delta) ||
      (delta < 0 && value < std::numeric_limits<int64_t>::min() - delta)) {
    return Status::InvalidArgument("kv add overflows int64");
  }
  value += delta;
  BATON_RETURN_IF_ERROR(Set(scope, key, std::to_string(value)));
  return value;
}

void KvStore::DropBelow(int64_t scope) {
  scopes_.erase(scopes_.upper_bound(kJobScope), scopes_.lower_bound(scope));
}

size_t KvStore::keys(int64_t scope) const {
  auto s = scopes_.find(scope);
  return s == scopes_.end() ? 0 : s->second.values.size();
}

}  // namespace baton::master
