#include "comm/generation.h"

#include <algorithm>

namespace baton::comm {

Result<Membership> JoinGeneration(Store& store, const std::string& prefix, int64_t member_id,
                                  int size, std::chrono::milliseconds timeout) {
  // Arrival order picks a slot; the slots are then sorted by member id so arrival order (a race)
  // does not decide ranks.
  BATON_ASSIGN_OR_RETURN(int64_t arrival, store.Add(prefix + "/join/count", 1));
  if (arrival > size) {
    return Status::AlreadyExists("generation " + prefix + " already has " + std::to_string(size) +
                                 " members");
  }
  BATON_RETURN_IF_ERROR(
      store.Set(prefix + "/join/slot" + std::to_string(arrival - 1), std::to_string(member_id)));
  Membership m;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int i = 0; i < size; ++i) {
    const auto left = std::max(std::chrono::milliseconds(0),
                               std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now()));
    auto value = store.Get(prefix + "/join/slot" + std::to_string(i), left);
    if (!value.ok()) return value.status().WithContext("joining generation " + prefix);
    m.members.push_back(std::stoll(*value));
  }
  std::sort(m.members.begin(), m.members.end());
  m.rank = static_cast<int>(std::find(m.members.begin(), m.members.end(), member_id) -
                            m.members.begin());
  return m;
}

std::string GenerationPrefix(const std::string& base, int generation) {
  return base + "/gen" + std::to_string(generation);
}

}  // namespace baton::comm
