// One rank's part of a row-sharded embedding table (G-Meta, papers/gmeta.md §4): a row belongs to
// rank `id mod world` (ids are 63-bit hashes, so rows spread evenly), and only its owner keeps
// its values and its optimizer state. Rows come into being on first touch with values that depend
// on (seed, id) alone, so any world size, and a single process, start from the same table: that is
// what lets a test compare a 4-rank run with a 1-rank run element by element.
//
// The sparse optimizer updates only the rows a meta-step touched ("lazy" state: a row's Adagrad
// accumulator or Adam moments advance only when it has a gradient, as torch's sparse Adagrad and
// SparseAdam do). Adam's bias correction uses the row's own step count (LazyAdam-style), where
// torch.optim.SparseAdam counts the table's steps: a row first touched late moves less here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"

namespace baton::meta {

enum class SparseOptimizerKind { kSgd, kAdagrad, kAdam };

struct SparseOptimizerSpec {
  SparseOptimizerKind kind = SparseOptimizerKind::kAdagrad;  // default adagrad
  double lr = 0.05;                                          // default 0.05
  double eps = 1e-10;                                        // adagrad 1e-10 (torch's); adam 1e-8
  double beta1 = 0.9, beta2 = 0.999;                         // adam only
};

Result<SparseOptimizerKind> ParseSparseOptimizer(std::string_view name);  // sgd, adagrad, adam

// The owner of row `id` (non-negative) among `world` ranks.
inline int OwnerOf(int64_t id, int world) { return static_cast<int>(id % world); }

// A row's initial values: uniform in [-scale, scale], a function of (seed, id, element) only.
template <typename T>
void InitialRow(uint64_t seed, int64_t id, int dim, double scale, T* out);

template <typename T>
class EmbeddingShard {
 public:
  struct Options {
    int dim = 16;
    int rank = 0, world = 1;
    uint64_t seed = 1;
    double init_scale = 0.05;  // default 0.05
    SparseOptimizerSpec optimizer;
  };
  explicit EmbeddingShard(const Options& options);

  int dim() const { return options_.dim; }
  // Rows held here (created by a gather or an update).
  size_t rows() const { return index_.size(); }

  // Copies the rows of `ids` (each owned by this rank, duplicates allowed) into `out`
  // (n × dim), creating the rows not seen before.
  Status Gather(const int64_t* ids, size_t n, T* out);
  // One optimizer update of the rows of `ids` with gradients `grads` (n × dim) times `scale`;
  // gradients of the same id are summed first, so an id sent by several ranks gets one update.
  Status Apply(const int64_t* ids, size_t n, const T* grads, double scale);

  // The row's current values, or null if it was never touched (tests, snapshots).
  const T* Find(int64_t id) const;

  // Every row held here with its optimizer state, appended to `out` as records a later Import
  // reads (a snapshot of the table is the concatenation of every rank's export).
  void Export(std::string* out) const;
  // Replaces this shard's rows with those of `records` (exports of any ranks and world size, of
  // this dim and optimizer) that this rank owns; the others are skipped. InvalidArgument when the
  // bytes are not such records.
  Status Import(std::string_view records);

 private:
  size_t RowOf(int64_t id);  // creates the row when absent
  void UpdateRow(size_t row, const T* grad);

  Options options_;
  std::unordered_map<int64_t, size_t> index_;
  std::vector<T> values_;
  std::vector<T> state1_, state2_;  // adagrad: sum of squares; adam: first and second moments
  std::vector<int64_t> steps_;      // adam: per-row step count
};

}  // namespace baton::meta
