#include "tea/temporal.h"

#include <algorithm>

#include "tea/graph.h"

namespace baton::tea {

TimeProfiles::TimeProfiles(const Dataset& data, int32_t node_size, const TimeProfileOptions& opt) {
  // (entity, time) credits from the raw quadruple list: every quadruple credits its head, which
  // through the inverse quadruples gives each fact's time(s) to both endpoints.
  std::vector<std::pair<int32_t, int32_t>> credits;
  std::vector<Quad> quads = RawQuadruples(data);
  if (opt.dedup) {
    std::sort(quads.begin(), quads.end());
    quads.erase(std::unique(quads.begin(), quads.end()), quads.end());
  }
  credits.reserve(quads.size() * (opt.credit_relation_id ? 2 : 1));
  for (const Quad& q : quads) {
    time_size_ = std::max(time_size_, q.time + 1);
    if (opt.skip_time_zero && q.time == 0) continue;
    credits.emplace_back(q.head, q.time);
    if (opt.credit_relation_id && q.rel < node_size) credits.emplace_back(q.rel, q.time);
  }
  std::sort(credits.begin(), credits.end());
  ptr_.assign(node_size + 1, 0);
  total_.assign(node_size, 0);
  for (size_t i = 0; i < credits.size();) {
    size_t j = i;
    while (j < credits.size() && credits[j] == credits[i]) ++j;
    const int32_t e = credits[i].first;
    time_.push_back(credits[i].second);
    count_.push_back(static_cast<int32_t>(j - i));
    ptr_[e + 1]++;
    total_[e] += static_cast<int32_t>(j - i);
    i = j;
  }
  for (int32_t e = 0; e < node_size; ++e) ptr_[e + 1] += ptr_[e];
}

double TimeProfiles::Dice(int32_t a, int32_t b) const {
  const int64_t denom = static_cast<int64_t>(total_[a]) + total_[b];
  if (denom == 0) return 0.0;
  int64_t i = ptr_[a], j = ptr_[b], common = 0;
  while (i < ptr_[a + 1] && j < ptr_[b + 1]) {
    if (time_[i] < time_[j]) {
      ++i;
    } else if (time_[j] < time_[i]) {
      ++j;
    } else {
      common += std::min(count_[i++], count_[j++]);
    }
  }
  return 2.0 * static_cast<double>(common) / static_cast<double>(denom);
}

void TimeProfiles::DiceMany(int32_t a, const int32_t* bs, int64_t nb, float* out,
                            std::vector<int32_t>* scratch) const {
  // Spread a's multiset over a dense array once, then each b costs only its own run length.
  scratch->assign(time_size_, 0);
  for (int64_t p = ptr_[a]; p < ptr_[a + 1]; ++p) (*scratch)[time_[p]] = count_[p];
  const int32_t* dense = scratch->data();
  for (int64_t j = 0; j < nb; ++j) {
    const int32_t b = bs[j];
    const int64_t denom = static_cast<int64_t>(total_[a]) + total_[b];
    int64_t common = 0;
    if (total_[a] > 0) {
      for (int64_t p = ptr_[b]; p < ptr_[b + 1]; ++p)
        common += std::min(dense[time_[p]], count_[p]);
    }
    out[j] = denom == 0 ? 0.0f : static_cast<float>(2.0 * common / static_cast<double>(denom));
  }
}

}  // namespace baton::tea
