// Eigen types used across the module; one place so every file agrees on storage order.
#pragma once

#pragma GCC system_header  // Eigen's own warnings must not fail our -Werror build
#include <Eigen/Dense>
#include <Eigen/Sparse>

namespace baton::tea {

// Row-major so that a row (one entity's vector) is contiguous, as gathers and top-k need.
using SpMat = Eigen::SparseMatrix<float, Eigen::RowMajor, int64_t>;
using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

}  // namespace baton::tea
