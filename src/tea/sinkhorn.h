// Sinkhorn normalisation on a sparse top-k support (spec §12).
#pragma once

#include <cstdint>
#include <vector>

namespace baton::tea {

// `values` holds scores S (rows x k, row-major) whose column ids are `cols` (into [0, num_cols)).
// Replaces them by P = exp(S / temperature) after `iterations` rounds of (row normalisation, then
// column normalisation over all stored entries of each column). Each row's maximum is subtracted
// before exp, which the first row normalisation cancels exactly; sums are in double. Column sums
// are reduced in a fixed order, so the result does not depend on `threads`.
void Sinkhorn(std::vector<float>* values, const std::vector<int32_t>& cols, int64_t rows, int k,
              int64_t num_cols, double temperature, int iterations, int threads);

}  // namespace baton::tea
