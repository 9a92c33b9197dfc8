// Fast top-k: int8 inner products (AVX-512 VNNI) pick the candidates per query, then exact fp32 dot
// products re-score the best of them (see SearchOptions). Internal to topk.cc.
#pragma once

#include "tea/topk.h"

namespace baton::tea {

bool Int8SearchSupported();
TopK Int8TopK(const Mat& queries, const Mat& candidates, int k, int margin, int rerank, bool sorted,
              int threads, PhaseTimes* times, SubsetSearch* subset);

}  // namespace baton::tea
