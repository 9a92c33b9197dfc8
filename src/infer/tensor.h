// Host-side tensors: what flows between the pipeline's stages and crosses into the model runtime.
// Kept free of libtorch so that only the backend translation unit pays for torch headers.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "infer/record_schema.h"

namespace baton::infer {

// A dense row-major tensor; `shape[0]` is the batch dimension. Exactly one of `f` and `i` holds
// the data, by `type`.
struct HostTensor {
  TensorType type = TensorType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<float> f;
  std::vector<int64_t> i;

  int64_t rows() const { return shape.empty() ? 0 : shape[0]; }
  // Elements per row (the product of shape[1:]).
  int64_t row_width() const {
    int64_t w = 1;
    for (size_t d = 1; d < shape.size(); ++d) w *= shape[d];
    return w;
  }
  int64_t elements() const { return rows() * row_width(); }
};

// A [rows, width...] tensor of zeros.
HostTensor ZerosTensor(TensorType type, std::vector<int64_t> shape);
// Rows [begin, end) of `t`.
HostTensor SliceRows(const HostTensor& t, int64_t begin, int64_t end);
// The rows of `parts` stacked (all with the same type and row shape).
HostTensor ConcatRows(const std::vector<const HostTensor*>& parts);
// OK when every output has `rows` rows (one per input row); else InvalidArgument saying how many
// a model returned ("the model returned 3 rows for a batch of 4").
Status CheckOutputRows(const std::vector<HostTensor>& outputs, int64_t rows);

}  // namespace baton::infer
