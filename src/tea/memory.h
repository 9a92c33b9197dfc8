// Large buffers backed by transparent huge pages where the kernel allows it (THP "madvise" mode).
// First-touch page faults on fresh multi-hundred-MB matrices cost ~15% of a run in small VMs;
// 2 MB pages make them 512x rarer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tea/eigen.h"

namespace baton::tea {

// Asks for huge pages on the 2 MB-aligned interior of [p, p + bytes); a no-op where unsupported.
void AdviseHugePages(void* p, size_t bytes);

// An uninitialised rows x cols matrix whose pages are advised before first touch.
Mat LargeMat(int64_t rows, int64_t cols);

// Resizes *v to n elements (value-initialised); fresh storage is advised before it is touched.
template <typename T>
void ResizeLarge(std::vector<T>* v, size_t n) {
  if (v->capacity() < n) {
    std::vector<T> fresh;
    fresh.reserve(n);
    AdviseHugePages(fresh.data(), n * sizeof(T));
    v->swap(fresh);
  }
  v->resize(n);
}

// Gives *m the shape rows x cols, keeping its storage (and contents) when the shape already
// matches.
void ReshapeLarge(Mat* m, int64_t rows, int64_t cols);

}  // namespace baton::tea
