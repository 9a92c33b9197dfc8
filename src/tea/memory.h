// Large buffers backed by transparent huge pages where the kernel allows it (THP "madvise" mode).
// First-touch page faults on fresh multi-hundred-MB matrices cost ~15% of a run in small VMs;
// 2 MB pages make them 512x rarer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "tea/eigen.h"

namespace baton::tea {

// Makes malloc keep freed memory for reuse instead of returning it to the kernel: no mmap for
// large blocks and no trimming of the heap. Each alignment round allocates and frees a few hundred
// MB of same-sized matrices; returned to the kernel, every page of them is faulted in and zeroed
// again next round (~8 s of CPU over a 3-round YAGO-WIKI20K run on the benchmark VM). Process-wide,
// so it is called by programs (baton tea, tea_bench), not by the library.
void KeepFreedMemoryInHeap();

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
