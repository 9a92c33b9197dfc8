// Large buffers backed by transparent huge pages where the kernel allows it (THP "madvise" mode).
// First-touch page faults on fresh multi-hundred-MB matrices cost ~15% of a run in small VMs;
// 2 MB pages make them 512x rarer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tea/eigen.h"

namespace baton::tea {

// Asks for huge pages on the 2 MB-aligned interior of [p, p + bytes); a no-op where unsupported.
void AdviseHugePages(void* p, size_t bytes);

// An uninitialised rows x cols matrix whose pages are advised before first touch.
Mat LargeMat(int64_t rows, int64_t cols);

// Gives *m the shape rows x cols, keeping its storage (and contents) when the shape already
// matches.
void ReshapeLarge(Mat* m, int64_t rows, int64_t cols);

}  // namespace baton::tea
