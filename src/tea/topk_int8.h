// Fast top-k: int8 inner products pick the candidates per query, then exact fp32 dot products
// re-score the best of them (see SearchOptions), with the kernels of `path` (topk_int8_kernels.h).
// Internal to topk.cc; `path` must be one the CPU supports.
#pragma once

#include "tea/cpu.h"
#include "tea/topk.h"

namespace baton::tea {

TopK Int8TopK(const Mat& queries, const Mat& candidates, int k, int margin, int rerank, bool sorted,
              int threads, KernelPath path, PhaseTimes* times, SubsetSearch* subset);

}  // namespace baton::tea
