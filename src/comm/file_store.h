// A Store kept in a directory of a file system every rank can see (one host, or NFS).
//
// One file per key, written to a temporary name and renamed, so readers never see half a value.
// Add() serialises through flock(2) on a per-key lock file. Waiting polls with a short backoff: the
// store is only used while groups form, never on the data path.
#pragma once

#include <memory>
#include <string>

#include "comm/store.h"

namespace baton::comm {

class FileStore : public Store {
 public:
  // Creates `dir` if needed. Keys may contain any byte; they are escaped into file names.
  static Result<std::unique_ptr<FileStore>> Open(const std::string& dir);

  Status Set(const std::string& key, const std::string& value) override;
  Result<std::string> Get(const std::string& key, std::chrono::milliseconds timeout) override;
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override;
  Result<int64_t> Add(const std::string& key, int64_t delta) override;

  const std::string& dir() const { return dir_; }

 private:
  explicit FileStore(std::string dir) : dir_(std::move(dir)) {}
  std::string PathOf(const std::string& key) const;
  // The value if the key exists, kNotFound otherwise.
  Result<std::string> TryGet(const std::string& key) const;

  std::string dir_;
};

}  // namespace baton::comm
