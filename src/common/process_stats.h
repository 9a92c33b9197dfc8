// Resource usage of this process or another one, read from /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace baton {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system time so far
  int64_t rss_bytes = 0;   // resident set size now
};

// Reads /proc/<pid>/stat and /proc/<pid>/statm; zeros if the process is gone.
ProcessStats ReadProcessStats(pid_t pid);
// Peak resident set size of this process (VmHWM), in bytes.
int64_t PeakRssBytes();

}  // namespace baton
