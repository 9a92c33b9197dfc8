#include "meta/sharded_embedding.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace baton::meta {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

Result<SparseOptimizerKind> ParseSparseOptimizer(std::string_view name) {
  if (name == "sgd") return SparseOptimizerKind::kSgd;
  if (name == "adagrad") return SparseOptimizerKind::kAdagrad;
  if (name == "adam") return SparseOptimizerKind::kAdam;
  return Status::InvalidArgument("expected sgd, adagrad or adam, got '" + std::string(name) + "'");
}

template <typename T>
void InitialRow(uint64_t seed, int64_t id, int dim, double scale, T* out) {
  const uint64_t base = Mix(seed ^ Mix(static_cast<uint64_t>(id)));
  for (int k = 0; k < dim; ++k) {
    const double unit =
        static_cast<double>(Mix(base + static_cast<uint64_t>(k)) >> 11) * 0x1.0p-53;  // [0, 1)
    out[k] = static_cast<T>((2.0 * unit - 1.0) * scale);
  }
}

template <typename T>
EmbeddingShard<T>::EmbeddingShard(const Options& options) : options_(options) {}

template <typename T>
size_t EmbeddingShard<T>::RowOf(int64_t id) {
  auto [it, inserted] = index_.try_emplace(id, index_.size());
  if (inserted) {
    const size_t d = static_cast<size_t>(options_.dim);
    values_.resize(values_.size() + d);
    InitialRow(options_.seed, id, options_.dim, options_.init_scale,
               values_.data() + it->second * d);
    if (options_.optimizer.kind != SparseOptimizerKind::kSgd) state1_.resize(values_.size(), T{0});
    if (options_.optimizer.kind == SparseOptimizerKind::kAdam) {
      state2_.resize(values_.size(), T{0});
      steps_.push_back(0);
    }
  }
  return it->second;
}

template <typename T>
Status EmbeddingShard<T>::Gather(const int64_t* ids, size_t n, T* out) {
  const size_t d = static_cast<size_t>(options_.dim);
  for (size_t k = 0; k < n; ++k) {
    if (ids[k] < 0 || OwnerOf(ids[k], options_.world) != options_.rank) {
      return Status::InvalidArgument("embedding row " + std::to_string(ids[k]) +
                                     " is not owned by rank " + std::to_string(options_.rank));
    }
    const size_t index = RowOf(ids[k]);  // first: creating a row may move values_
    const T* row = values_.data() + index * d;
    std::copy(row, row + d, out + k * d);
  }
  return Status::Ok();
}

template <typename T>
void EmbeddingShard<T>::UpdateRow(size_t row, const T* grad) {
  const SparseOptimizerSpec& o = options_.optimizer;
  const size_t d = static_cast<size_t>(options_.dim);
  T* w = values_.data() + row * d;
  switch (o.kind) {
    case SparseOptimizerKind::kSgd:
      for (size_t k = 0; k < d; ++k) w[k] -= static_cast<T>(o.lr * grad[k]);
      break;
    case SparseOptimizerKind::kAdagrad: {  // torch.optim.Adagrad, initial accumulator 0
      T* sum = state1_.data() + row * d;
      for (size_t k = 0; k < d; ++k) {
        sum[k] += grad[k] * grad[k];
        w[k] -= static_cast<T>(o.lr * grad[k] / (std::sqrt(static_cast<double>(sum[k])) + o.eps));
      }
      break;
    }
    case SparseOptimizerKind::kAdam: {  // lazy Adam: a row's own step count corrects its bias
      T* m = state1_.data() + row * d;
      T* v = state2_.data() + row * d;
      const int64_t t = ++steps_[row];
      const double c1 = 1.0 - std::pow(o.beta1, static_cast<double>(t));
      const double c2 = 1.0 - std::pow(o.beta2, static_cast<double>(t));
      for (size_t k = 0; k < d; ++k) {
        m[k] = static_cast<T>(o.beta1 * m[k] + (1.0 - o.beta1) * grad[k]);
        v[k] = static_cast<T>(o.beta2 * v[k] + (1.0 - o.beta2) * grad[k] * grad[k]);
        const double denom = std::sqrt(static_cast<double>(v[k]) / c2) + o.eps;
        w[k] -= static_cast<T>(o.lr * (static_cast<double>(m[k]) / c1) / denom);
      }
      break;
    }
  }
}

template <typename T>
Status EmbeddingShard<T>::Apply(const int64_t* ids, size_t n, const T* grads, double scale) {
  const size_t d = static_cast<size_t>(options_.dim);
  // Sum the gradients of each distinct id (in order of first appearance, so the sum's order, and
  // its rounding, depend only on the order the rows arrived in).
  std::unordered_map<int64_t, size_t> slot;
  std::vector<int64_t> order;
  std::vector<T> summed;
  for (size_t k = 0; k < n; ++k) {
    if (ids[k] < 0 || OwnerOf(ids[k], options_.world) != options_.rank) {
      return Status::InvalidArgument("gradient for embedding row " + std::to_string(ids[k]) +
                                     " sent to rank " + std::to_string(options_.rank) +
                                     ", which does not own it");
    }
    auto [it, inserted] = slot.try_emplace(ids[k], order.size());
    if (inserted) {
      order.push_back(ids[k]);
      summed.resize(summed.size() + d, T{0});
    }
    T* acc = summed.data() + it->second * d;
    for (size_t e = 0; e < d; ++e) acc[e] += grads[k * d + e];
  }
  for (size_t i = 0; i < order.size(); ++i) {
    T* g = summed.data() + i * d;
    for (size_t e = 0; e < d; ++e) g[e] = static_cast<T>(g[e] * scale);
    UpdateRow(RowOf(order[i]), g);
  }
  return Status::Ok();
}

template <typename T>
const T* EmbeddingShard<T>::Find(int64_t id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : values_.data() + it->second * options_.dim;
}

namespace {

// An export: this header, then `rows` records of (id, values, state1, state2, steps) with the
// state parts present as the optimizer keeps them.
struct ExportHeader {
  uint32_t magic = 0x5742454d;  // "MEBW"
  uint32_t dim = 0;
  uint32_t optimizer = 0;
  uint32_t element_bytes = 0;
  uint64_t rows = 0;
};

size_t StateCopies(SparseOptimizerKind kind) {
  return kind == SparseOptimizerKind::kSgd ? 0 : kind == SparseOptimizerKind::kAdagrad ? 1 : 2;
}

}  // namespace

template <typename T>
void EmbeddingShard<T>::Export(std::string* out) const {
  const size_t d = static_cast<size_t>(options_.dim);
  const size_t copies = StateCopies(options_.optimizer.kind);
  const bool adam = options_.optimizer.kind == SparseOptimizerKind::kAdam;
  ExportHeader h;
  h.dim = static_cast<uint32_t>(d);
  h.optimizer = static_cast<uint32_t>(options_.optimizer.kind);
  h.element_bytes = sizeof(T);
  h.rows = index_.size();
  out->append(reinterpret_cast<const char*>(&h), sizeof(h));
  auto put = [&](const void* p, size_t bytes) { out->append(static_cast<const char*>(p), bytes); };
  for (const auto& [id, row] : index_) {
    put(&id, sizeof(id));
    put(values_.data() + row * d, d * sizeof(T));
    if (copies >= 1) put(state1_.data() + row * d, d * sizeof(T));
    if (copies >= 2) put(state2_.data() + row * d, d * sizeof(T));
    if (adam) put(&steps_[row], sizeof(int64_t));
  }
}

template <typename T>
Status EmbeddingShard<T>::Import(std::string_view records) {
  index_.clear();
  values_.clear();
  state1_.clear();
  state2_.clear();
  steps_.clear();
  const size_t d = static_cast<size_t>(options_.dim);
  const size_t copies = StateCopies(options_.optimizer.kind);
  const bool adam = options_.optimizer.kind == SparseOptimizerKind::kAdam;
  const size_t record = sizeof(int64_t) + (1 + copies) * d * sizeof(T) + (adam ? 8 : 0);
  while (!records.empty()) {
    ExportHeader h;
    if (records.size() < sizeof(h)) return Status::InvalidArgument("embedding export cut short");
    std::memcpy(&h, records.data(), sizeof(h));
    records.remove_prefix(sizeof(h));
    if (h.magic != ExportHeader{}.magic || h.dim != d || h.element_bytes != sizeof(T) ||
        h.optimizer != static_cast<uint32_t>(options_.optimizer.kind)) {
      return Status::InvalidArgument(
          "embedding export of another table (dimension, element type or optimizer differs)");
    }
    if (h.rows > records.size() / record) {
      return Status::InvalidArgument("embedding export cut short");
    }
    for (uint64_t k = 0; k < h.rows; ++k, records.remove_prefix(record)) {
      int64_t id = 0;
      std::memcpy(&id, records.data(), sizeof(id));
      if (id < 0) return Status::InvalidArgument("embedding export with a negative id");
      if (OwnerOf(id, options_.world) != options_.rank) continue;
      const size_t row = RowOf(id);
      const char* p = records.data() + sizeof(id);
      std::memcpy(values_.data() + row * d, p, d * sizeof(T));
      p += d * sizeof(T);
      if (copies >= 1) {
        std::memcpy(state1_.data() + row * d, p, d * sizeof(T));
        p += d * sizeof(T);
      }
      if (copies >= 2) {
        std::memcpy(state2_.data() + row * d, p, d * sizeof(T));
        p += d * sizeof(T);
      }
      if (adam) std::memcpy(&steps_[row], p, sizeof(int64_t));
    }
  }
  return Status::Ok();
}

template void InitialRow<float>(uint64_t, int64_t, int, double, float*);
template void InitialRow<double>(uint64_t, int64_t, int, double, double*);
template class EmbeddingShard<float>;
template class EmbeddingShard<double>;

}  // namespace baton::meta
