// One aspect (relational or temporal) of LightTEA's two-aspect three-view label propagation
// (spec §6–§8): random seed labels, propagation steps, and the tuple-weighted random projection.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "tea/cpu.h"
#include "tea/eigen.h"
#include "tea/graph.h"
#include "tea/timing.h"

namespace baton::tea {

struct FeatureOptions {
  int label_dim = 512;  // width of the random seed labels
  int depth = 2;        // propagation steps; the official code always does 2 (quirk Q8)
  int proj_dim = 170;   // heads h of the triple view: 170 for YAGO data, 256 for ICEWS
  int mini_dim = 16;    // width per head; the output width is proj_dim * mini_dim
  int threads = 2;
  // Run the two large projection GEMMs with bf16 inputs and fp32 accumulation (gemm_bf16.h);
  // false = fp32 BLAS, the official arithmetic.
  bool bf16_projection = true;
  // Kernels for the projection GEMM and the element-wise loops (cpu.h).
  KernelPath kernel = DetectedKernelPath();
};

// Scratch matrices reused across calls: fresh multi-hundred-MB allocations cost page faults.
struct FeatureWorkspace {
  Mat views;      // N x label_dim*(depth+1): [E0 | E1 | E2]
  Mat projected;  // N x width: E^ P
};

// Features of every entity (N x proj_dim*mini_dim), each row unit length or zero, into *out
// (reshaped if needed). `seeds` are the aligned pairs whose two entities share a random label;
// `stream` seeds every random draw.
void AspectFeatures(const Graph& g, const AspectMatrices& aspect,
                    const std::vector<std::pair<int32_t, int32_t>>& seeds,
                    const FeatureOptions& opt, uint64_t stream, FeatureWorkspace* ws, Mat* out,
                    PhaseTimes* times);

// Convenience form with a temporary workspace.
Mat AspectFeatures(const Graph& g, const AspectMatrices& aspect,
                   const std::vector<std::pair<int32_t, int32_t>>& seeds, const FeatureOptions& opt,
                   uint64_t stream, PhaseTimes* times);

}  // namespace baton::tea
