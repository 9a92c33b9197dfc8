// Temporal similarity (spec §10): Dice overlap of two entities' multisets of time ids. Computed
// only for the (query, candidate) pairs the search returns, never as a dense test x test matrix.
#pragma once

#include <cstdint>
#include <vector>

#include "tea/dataset.h"

namespace baton::tea {

struct TimeProfileOptions {
  // Quirk Q2: the official code also credits a fact's time to the entity whose id equals the
  // relation id (2r or 2r+1).
  bool credit_relation_id = false;
  // Whether time id 0 is skipped (it means "unknown" in YAGO; the official code always skips it).
  bool skip_time_zero = true;
  // Count each distinct (entity, time) of a fact once instead of once per raw quadruple (Q3 off).
  bool dedup = false;
};

// Each entity's multiset of time ids as sorted (time, count) runs, in CSR form.
class TimeProfiles {
 public:
  TimeProfiles(const Dataset& data, int32_t node_size, const TimeProfileOptions& opt);

  int32_t time_size() const { return time_size_; }
  // Multiset size |T(e)|.
  int32_t total(int32_t e) const { return total_[e]; }

  // simt(a, b) = 2 * sum over common times of min(count_a, count_b) / (|T(a)| + |T(b)|); 0 when
  // nothing is shared.
  double Dice(int32_t a, int32_t b) const;

  // out[j] = Dice(a, bs[j]) for many b with one query a; `scratch` is reused dense storage.
  void DiceMany(int32_t a, const int32_t* bs, int64_t nb, float* out,
                std::vector<int32_t>* scratch) const;

 private:
  int32_t time_size_ = 0;
  std::vector<int64_t> ptr_;
  std::vector<int32_t> time_, count_, total_;
};

}  // namespace baton::tea
