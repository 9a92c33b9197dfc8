#include "comm/reduce.h"

#include <algorithm>
#include <cstdint>

#include "comm/bfloat16.h"

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

// bf16 loops run in blocks of a constant trip count: GCC's -O2 vectoriser (the "very cheap" cost
// model) only vectorises loops whose count it knows to be a multiple of the vector width.
constexpr size_t kBFloat16Block = 32;

template <typename F>
void MapBFloat16(uint16_t* __restrict dst, const uint16_t* __restrict src, size_t n, F f) {
  size_t i = 0;
  for (; i + kBFloat16Block <= n; i += kBFloat16Block) {
    for (size_t j = 0; j < kBFloat16Block; ++j) {
      dst[i + j] = FloatToBFloat16(f(BFloat16ToFloat(dst[i + j]), BFloat16ToFloat(src[i + j])));
    }
  }
  for (; i < n; ++i) dst[i] = FloatToBFloat16(f(BFloat16ToFloat(dst[i]), BFloat16ToFloat(src[i])));
}

void ReduceBFloat16(uint16_t* dst, const uint16_t* src, size_t n, ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MapBFloat16(dst, src, n, [](float a, float b) { return a + b; });
    case ReduceOp::kMax:
      // Exact: the larger input converts back to itself.
      return MapBFloat16(dst, src, n, [](float a, float b) { return std::max(a, b); });
    case ReduceOp::kMin:
      return MapBFloat16(dst, src, n, [](float a, float b) { return std::min(a, b); });
  }
}

void DivideBFloat16(uint16_t* buf, size_t n, int divisor) {
  const float d = static_cast<float>(divisor);
  size_t i = 0;
  for (; i + kBFloat16Block <= n; i += kBFloat16Block) {
    for (size_t j = 0; j < kBFloat16Block; ++j) {
      buf[i + j] = FloatToBFloat16(BFloat16ToFloat(buf[i + j]) / d);
    }
  }
  for (; i < n; ++i) buf[i] = FloatToBFloat16(BFloat16ToFloat(buf[i]) / d);
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
    case DataType::kBFloat16:
      return ReduceBFloat16(static_cast<uint16_t*>(dst), static_cast<const uint16_t*>(src), count,
                            op);
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
    case DataType::kBFloat16:
      return DivideBFloat16(static_cast<uint16_t*>(buf), count, divisor);
  }
}

}  // namespace baton::comm
