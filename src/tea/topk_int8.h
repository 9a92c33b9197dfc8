// Fast top-k: int8 inner products (AVX-512 VNNI) pick k + margin candidates per query, then exact
// fp32 dot products re-rank them. Internal to topk.cc.
#pragma once

#include "tea/topk.h"

namespace baton::tea {

bool Int8SearchSupported();
TopK Int8TopK(const Mat& queries, const Mat& candidates, int k, int margin, int threads,
              PhaseTimes* times);

}  // namespace baton::tea
