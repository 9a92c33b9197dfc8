// Exactly-once shard outputs. A worker writes each attempt to a staging file named by shard and
// lease token; the master promotes the staged file of the accepted commit to the shard's final
// name (after the commit is durable) and deletes the losers. A fenced worker therefore can never
// overwrite a committed output, even if it wakes up between another worker's write and commit.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "master/dds.h"

namespace baton::master {

class OutputCommitter {
 public:
  // `dir` empty: the job has no per-shard output and every method is a no-op.
  OutputCommitter(std::string dir, std::string suffix);

  bool enabled() const { return !dir_.empty(); }
  const std::string& dir() const { return dir_; }
  // dir/.staging/part-<id>.t<token><suffix>
  std::string StagingPath(uint64_t shard_id, uint64_t token) const;
  // dir/part-<id, 8 digits><suffix>
  std::string FinalPath(uint64_t shard_id) const;

  // Creates dir and dir/.staging.
  Status Prepare() const;
  Status CheckStaged(uint64_t shard_id, uint64_t token) const;
  // Renames the staged attempt to the final name. OK if it was already promoted.
  Status Promote(uint64_t shard_id, uint64_t token) const;
  void Discard(uint64_t shard_id, uint64_t token) const;
  // After a master restart: promotes staged files of DONE shards whose commit was durable but not
  // yet promoted, and deletes staged files of attempts that can no longer commit.
  Status Recover(const Dds& dds) const;
  // At the end of the job: removes the staging directory and writes a _MANIFEST file (counts).
  Status Finalize(const DdsCounts& counts) const;

 private:
  std::string dir_, staging_, suffix_;
};

}  // namespace baton::master
