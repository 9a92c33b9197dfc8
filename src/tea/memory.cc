#include "tea/memory.h"

#include <malloc.h>
#include <sys/mman.h>

#include <climits>

namespace baton::tea {

void KeepFreedMemoryInHeap() {
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, INT_MAX);
}

void AdviseHugePages(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = 2u << 20;
  if (bytes < 2 * kHuge) return;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE);
#endif
}

Mat LargeMat(int64_t rows, int64_t cols) {
  Mat m(rows, cols);
  AdviseHugePages(m.data(), sizeof(float) * static_cast<size_t>(m.size()));
  return m;
}

void ReshapeLarge(Mat* m, int64_t rows, int64_t cols) {
  if (m->rows() != rows || m->cols() != cols) {
    m->resize(0, 0);
    *m = LargeMat(rows, cols);
  }
}

}  // namespace baton::tea
