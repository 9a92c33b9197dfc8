// Which SIMD kernels LightTEA's fast paths run, chosen at run time from the CPU.
//
// The binary is built for baseline x86-64; the kernels that need more (the int8 candidate search,
// the bf16 projection GEMM, the hot element-wise loops) exist once per kernel path and carry their
// own target attribute, so nothing beyond the chosen path's instructions is ever executed:
//
//   avx512   AVX-512 F/BW/VL + VNNI (int8 search, vpdpbusd) and AVX512_BF16 (projections,
//            vdpbf16ps)
//   avx2     AVX2 + FMA: int8 search with vpmaddubsw/vpmaddwd (|q| x sign(q)c, so no int16
//            saturation), bf16 projections held as fp32 and multiplied with FMA in the order
//            vdpbf16ps adds
//   generic  portable C++ (baseline x86-64, or any other CPU): the same arithmetic, unvectorised
//            by hand; selectable for tests, never chosen automatically
//
// The int8 dot products are exact integers on every path and the fp32 re-scoring sums in the same
// order, so the avx512, avx2 and generic searches return the same candidates and scores; the
// avx512 and avx2 projections are the same bits too (tests/tea/topk_test.cc, gemm_test.cc).
//
// The path is the best one the CPU supports (cpuid) unless lowered: the environment variable
// BATON_TEA_KERNEL (avx512 | avx2 | generic | auto), or AlignOptions::kernel / `--kernel`, which
// takes precedence. A path the CPU cannot run is an error, not a silent fallback. A CPU without
// AVX2 uses the fp32 paths (BLAS projections, fp32 search) unless `generic` is asked for.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace baton::tea {

enum class KernelPath { kGeneric = 0, kAvx2 = 1, kAvx512 = 2 };

// Name as accepted by ParseKernelPath: "generic", "avx2", "avx512".
const char* KernelPathName(KernelPath p);

// Whether this CPU can run the path: generic always; avx2 needs AVX2 + FMA; avx512 needs
// AVX-512 F/BW/VL/VNNI and AVX512_BF16.
bool KernelPathSupported(KernelPath p);

// The highest path this CPU supports (cached after the first call).
KernelPath DetectedKernelPath();

// The CPU features the dispatch looks at that this CPU has, comma-separated in a fixed order
// (e.g. "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,avxvnni").
std::string CpuFeatureList();

struct KernelChoice {
  KernelPath path = KernelPath::kGeneric;
  // false: use the fp32 arithmetic (no reduced-precision kernels): what "auto" picks on a CPU
  // without AVX2. The element-wise loops still run `path`.
  bool reduced_precision = true;
  std::string source;  // "cpu", "BATON_TEA_KERNEL" or "option": who decided
};

// Resolves a request: "" or "auto" = BATON_TEA_KERNEL if set (and not "auto"), else the best path
// of this CPU; "avx512" | "avx2" | "generic" = that path. Fails with kInvalidArgument for an
// unknown name or a path this CPU cannot run (naming the missing features).
Result<KernelChoice> ResolveKernelPath(std::string_view request);

}  // namespace baton::tea
