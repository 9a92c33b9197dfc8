// Element-wise reduction kernels used by the ring algorithms and by gloo's built-in allreduce.
#pragma once

#include <cstddef>

#include "comm/types.h"

namespace baton::comm {

// dst[i] = op(dst[i], src[i]) for i < count. kAvg reduces like kSum; callers divide at the end.
// kBFloat16 computes in float and rounds each result to nearest-even (bfloat16.h).
void ReduceInto(void* dst, const void* src, size_t count, DataType type, ReduceOp op);

// buf[i] /= divisor, the last step of kAvg.
void DivideBy(void* buf, size_t count, DataType type, int divisor);

}  // namespace baton::comm
