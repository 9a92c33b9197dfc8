// Small filesystem helpers with explicit durability semantics.
#pragma once

#include <string>

#include "common/status.h"

namespace baton {

// Writes `contents` to `path` atomically: a temporary file beside it, fsync, rename, fsync of the
// directory. After OK, a reader sees either the old file or the whole new one, even across a crash.
Status WriteFileAtomic(const std::string& path, const std::string& contents, int mode = 0644);

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path);

// fsyncs a directory so that a rename or create inside it survives a machine crash.
Status SyncDirectory(const std::string& dir);

// Creates `dir` and its parents; fails with a clear message if it exists but is not writable.
Status EnsureWritableDirectory(const std::string& dir);

}  // namespace baton
