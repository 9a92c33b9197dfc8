// Moving embedding rows between the ranks that need them and the ranks that own them, once per
// meta-step (G-Meta, papers/gmeta.md §4 steps 1 and 5):
//
//   Lookup(ids)   the ids of all of a rank's tasks, support and query, deduplicated; the count,
//                 id and row all-to-all(v)s bring every row from its owner;
//   Push(grads)   one all-to-all(v) returns each row's gradient to its owner (which received the
//                 ids in Lookup and kept them), and the owner's sparse optimizer applies the sum.
//
// Lookup before Push, in that order, every meta-step: Push reuses Lookup's plan. A group of one
// (or none) moves nothing. Errors are the group's (a dead peer: kUnavailable) or a row sent to a
// rank that does not own it (a lying peer: kInvalidArgument).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "comm/process_group.h"
#include "common/status.h"
#include "meta/sharded_embedding.h"

namespace baton::meta {

// The distinct values of `ids`, sorted, and for each input its position among them.
struct UniqueIds {
  std::vector<int64_t> ids;
  std::vector<int32_t> inverse;  // ids[inverse[k]] == input[k]
};
UniqueIds Deduplicate(const int64_t* ids, size_t n);

struct ExchangeCounters {
  int64_t lookups = 0;         // Lookup calls (one per meta-step when the design holds)
  int64_t pushes = 0;          // Push calls
  int64_t rows_requested = 0;  // rows this rank asked for, over all lookups
  int64_t rows_served = 0;     // rows this rank sent to others (or itself) as owner
  int64_t bytes_sent = 0;      // ids, rows and gradients this rank put on the wire
};

template <typename T>
class EmbeddingExchange {
 public:
  // `group` may be null for a single process; otherwise its size and rank are the shard's.
  EmbeddingExchange(comm::ProcessGroup* group, EmbeddingShard<T>* shard);

  // Fills `rows` (ids.size() × dim) with the current rows of `ids` (which need not be unique, but
  // are sent as given: deduplicate first to send each once).
  Status Lookup(const std::vector<int64_t>& ids, std::vector<T>* rows);
  // `grads` (ids.size() × dim, for the ids of the last Lookup) times `scale` go to their owners,
  // each of which sums what every rank sent for a row and updates it once.
  Status Push(const T* grads, double scale);

  const ExchangeCounters& counters() const { return counters_; }

 private:
  comm::ProcessGroup* group_;
  EmbeddingShard<T>* shard_;
  int world_ = 1;
  // The last lookup's plan: where each requested id went (send order), how many went to and came
  // from each rank, and the ids this rank serves (receive order).
  std::vector<size_t> send_order_;
  std::vector<size_t> send_counts_, recv_counts_;
  std::vector<int64_t> served_ids_;
  size_t requested_ = 0;
  ExchangeCounters counters_;
};

}  // namespace baton::meta
