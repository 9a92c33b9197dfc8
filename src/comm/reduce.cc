#include "comm/reduce.h"

#include <algorithm>
#include <cstdint>

namespace baton::comm {
namespace {

template <typename T>
void ReduceTyped(T* __restrict dst, const T* __restrict src, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      for (size_t i = 0; i < n; ++i) dst[i] += src[i];
      return;
    case ReduceOp::kMax:
      for (size_t i = 0; i < n; ++i) dst[i] = std::max(dst[i], src[i]);
      return;
    case ReduceOp::kMin:
      for (size_t i = 0; i < n; ++i) dst[i] = std::min(dst[i], src[i]);
      return;
  }
}

template <typename T>
void DivideTyped(T* buf, size_t n, int divisor) {
  const T d = static_cast<T>(divisor);
  for (size_t i = 0; i < n; ++i) buf[i] /= d;
}

}  // namespace

void ReduceInto(void* dst, const void* src, size_t count, DataType type, ReduceOp op) {
  switch (type) {
    case DataType::kFloat32:
      return ReduceTyped(static_cast<float*>(dst), static_cast<const float*>(src), count, op);
    case DataType::kFloat64:
      return ReduceTyped(static_cast<double*>(dst), static_cast<const double*>(src), count, op);
    case DataType::kInt64:
      return ReduceTyped(static_cast<int64_t*>(dst), static_cast<const int64_t*>(src), count, op);
  }
}

void DivideBy(void* buf, size_t count, DataType type, int divisor) {
  switch (type) {
    case DataType::kFloat32:
      return DivideTyped(static_cast<float*>(buf), count, divisor);
    case DataType::kFloat64:
      return DivideTyped(static_cast<double*>(buf), count, divisor);
    case DataType::kInt64:
      return DivideTyped(static_cast<int64_t*>(buf), count, divisor);
  }
}

}  // namespace baton::comm
