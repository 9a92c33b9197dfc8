#include "meta/embedding_exchange.h"

#include <algorithm>
#include <numeric>
#include <utility>

namespace baton::meta {
namespace {

template <typename T>
constexpr comm::DataType kRowType = sizeof(T) == 8 ? comm::DataType::kFloat64
                                                   : comm::DataType::kFloat32;

// The most ids one rank may ask another for in one lookup: a peer announcing more lies (or is
// broken), and is refused before anything is allocated for it.
constexpr int64_t kMaxIdsPerRank = int64_t{1} << 26;

// Per-rank id counts as element counts of rows of `dim` values.
std::vector<size_t> Times(const std::vector<size_t>& counts, size_t dim) {
  std::vector<size_t> out(counts);
  for (size_t& c : out) c *= dim;
  return out;
}

}  // namespace

UniqueIds Deduplicate(const int64_t* ids, size_t n) {
  // One sort of (id, position) pairs gives both the distinct ids and every input's place.
  std::vector<std::pair<int64_t, int32_t>> sorted(n);
  for (size_t k = 0; k < n; ++k) sorted[k] = {ids[k], static_cast<int32_t>(k)};
  std::sort(sorted.begin(), sorted.end());
  UniqueIds out;
  out.inverse.resize(n);
  for (const auto& [id, position] : sorted) {
    if (out.ids.empty() || out.ids.back() != id) out.ids.push_back(id);
    out.inverse[static_cast<size_t>(position)] = static_cast<int32_t>(out.ids.size() - 1);
  }
  return out;
}

template <typename T>
EmbeddingExchange<T>::EmbeddingExchange(comm::ProcessGroup* group, EmbeddingShard<T>* shard)
    : group_(group), shard_(shard), world_(group == nullptr ? 1 : group->size()) {}

template <typename T>
Status EmbeddingExchange<T>::Lookup(const std::vector<int64_t>& ids, std::vector<T>* rows) {
  const size_t d = static_cast<size_t>(shard_->dim());
  ++counters_.lookups;
  counters_.rows_requested += static_cast<int64_t>(ids.size());
  requested_ = ids.size();
  rows->assign(ids.size() * d, T{0});
  if (world_ == 1) {
    served_ids_ = ids;
    counters_.rows_served += static_cast<int64_t>(ids.size());
    return shard_->Gather(ids.data(), ids.size(), rows->data());
  }
  for (int64_t id : ids) {
    if (id < 0) return Status::InvalidArgument("negative embedding id " + std::to_string(id));
  }
  // Group the requests by owner (stable, so the order inside a run is the caller's).
  send_order_.resize(ids.size());
  std::iota(send_order_.begin(), send_order_.end(), size_t{0});
  std::stable_sort(send_order_.begin(), send_order_.end(), [&](size_t a, size_t b) {
    return OwnerOf(ids[a], world_) < OwnerOf(ids[b], world_);
  });
  std::vector<int64_t> send_ids(ids.size());
  std::vector<int64_t> counts(static_cast<size_t>(world_), 0);
  for (size_t k = 0; k < ids.size(); ++k) {
    send_ids[k] = ids[send_order_[k]];
    ++counts[static_cast<size_t>(OwnerOf(send_ids[k], world_))];
  }
  std::vector<int64_t> incoming(static_cast<size_t>(world_), 0);
  BATON_RETURN_IF_ERROR(
      group_->AllToAll(counts.data(), incoming.data(), 1, comm::DataType::kInt64));
  send_counts_.assign(counts.begin(), counts.end());
  recv_counts_.resize(incoming.size());
  for (size_t r = 0; r < incoming.size(); ++r) {
    if (incoming[r] < 0 || incoming[r] > kMaxIdsPerRank) {
      return Status::InvalidArgument("rank " + std::to_string(r) + " announced " +
                                     std::to_string(incoming[r]) + " embedding ids");
    }
    recv_counts_[r] = static_cast<size_t>(incoming[r]);
  }
  const size_t served = std::accumulate(recv_counts_.begin(), recv_counts_.end(), size_t{0});
  served_ids_.assign(served, 0);
  BATON_RETURN_IF_ERROR(group_->AllToAllV(send_ids.data(), send_counts_, served_ids_.data(),
                                          recv_counts_, comm::DataType::kInt64));
  std::vector<T> served_rows(served * d);
  BATON_RETURN_IF_ERROR(shard_->Gather(served_ids_.data(), served, served_rows.data()));
  std::vector<T> fetched(ids.size() * d);
  BATON_RETURN_IF_ERROR(group_->AllToAllV(served_rows.data(), Times(recv_counts_, d),
                                          fetched.data(), Times(send_counts_, d), kRowType<T>));
  for (size_t k = 0; k < ids.size(); ++k) {
    std::copy_n(fetched.data() + k * d, d, rows->data() + send_order_[k] * d);
  }
  counters_.rows_served += static_cast<int64_t>(served);
  counters_.bytes_sent += static_cast<int64_t>(ids.size() * sizeof(int64_t) +
                                               served * d * sizeof(T) + world_ * sizeof(int64_t));
  return Status::Ok();
}

template <typename T>
Status EmbeddingExchange<T>::Push(const T* grads, double scale) {
  const size_t d = static_cast<size_t>(shard_->dim());
  ++counters_.pushes;
  if (world_ == 1) return shard_->Apply(served_ids_.data(), served_ids_.size(), grads, scale);
  std::vector<T> send(requested_ * d);
  for (size_t k = 0; k < requested_; ++k) {
    std::copy_n(grads + send_order_[k] * d, d, send.data() + k * d);
  }
  std::vector<T> received(served_ids_.size() * d);
  BATON_RETURN_IF_ERROR(group_->AllToAllV(send.data(), Times(send_counts_, d), received.data(),
                                          Times(recv_counts_, d), kRowType<T>));
  counters_.bytes_sent += static_cast<int64_t>(send.size() * sizeof(T));
  return shard_->Apply(served_ids_.data(), served_ids_.size(), received.data(), scale);
}

template class EmbeddingExchange<float>;
template class EmbeddingExchange<double>;

}  // namespace baton::meta
