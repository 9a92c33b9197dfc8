// Generations: how the survivors of a failure agree on a new group.
//
// Each member of the next generation announces itself under the generation's prefix with a stable
// member id (its old rank, or a worker id). Once `size` members have joined, every one of them
// reads the full list; ranks are assigned in member-id order, so the survivors keep their relative
// order and every member computes the same answer without a coordinator.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "comm/store.h"

namespace baton::comm {

struct Membership {
  int rank = 0;                  // this member's rank in the new generation
  std::vector<int64_t> members;  // member ids, index = new rank
};

// Joins generation `prefix` (e.g. "job42/gen1") expecting `size` members in total. Fails with
// kDeadlineExceeded if they do not all arrive within `timeout`, kAlreadyExists if more try to join.
Result<Membership> JoinGeneration(Store& store, const std::string& prefix, int64_t member_id,
                                  int size, std::chrono::milliseconds timeout);

// "<base>/gen<N>": the prefix conventionally used for generation N of a job.
std::string GenerationPrefix(const std::string& base, int generation);

}  // namespace baton::comm
