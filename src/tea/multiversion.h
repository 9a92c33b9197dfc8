// Element-wise loops compiled once per kernel path (cpu.h) and dispatched on the chosen path at
// run time, instead of GCC's target_clones, whose loader-time choice cannot be lowered: a forced
// avx2 run must not execute AVX-512 code anywhere. The avx512 and avx2 versions give the same
// bits: GCC does not reorder floating-point operations, and both targets have FMA, so it fuses
// the same multiply-adds (C++ allows contraction, GCC's default). The generic version, built for
// CPUs without FMA, may differ from them in the last bit where they fuse.
//
// Usage, in a .cc file:
//   TEA_ALWAYS_INLINE inline void FooBody(int64_t n, float* x) { ... }
//   TEA_PER_PATH(Foo, (int64_t n, float* x), (n, x))
//   ... TEA_DISPATCH(path, Foo, (n, x));
#pragma once

#include "tea/cpu.h"

#define TEA_ALWAYS_INLINE __attribute__((always_inline))

#define TEA_PER_PATH(name, params, args)                                           \
  __attribute__((target("avx512f"))) void name##Avx512 params { name##Body args; } \
  __attribute__((target("avx2,fma"))) void name##Avx2 params { name##Body args; }  \
  void name##Generic params { name##Body args; }

#define TEA_DISPATCH(path, name, args)         \
  do {                                         \
    switch (path) {                            \
      case ::baton::tea::KernelPath::kAvx512:  \
        name##Avx512 args;                     \
        break;                                 \
      case ::baton::tea::KernelPath::kAvx2:    \
        name##Avx2 args;                       \
        break;                                 \
      case ::baton::tea::KernelPath::kGeneric: \
        name##Generic args;                    \
        break;                                 \
    }                                          \
  } while (0)
