// One meta-learning episode: a task's support rows (the inner loop adapts on them) followed by
// its query rows (the outer loss is taken on them). This is the unit Meta-IO stores, the DDS
// shards and a meta-step consumes; a task's two sets are never split across ranks.
//
// Every row has the same shape: `num_dense` float features, `num_sparse` categorical ids (one per
// field, already hashed into one 63-bit id space in which each field has its own salt, so one
// embedding table serves all fields) and a 0/1 label.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace baton::meta {

struct Episode {
  std::string task_id;
  uint32_t num_support = 0;
  uint32_t num_query = 0;
  uint32_t num_dense = 0;
  uint32_t num_sparse = 0;
  // Row-major, support rows first then query rows: rows() × num_dense, rows() × num_sparse, rows().
  std::vector<float> dense;
  std::vector<int64_t> sparse;
  std::vector<float> labels;

  size_t rows() const { return size_t{num_support} + num_query; }
};

}  // namespace baton::meta
