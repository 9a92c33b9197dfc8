#include "master/output_committer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "common/files.h"

namespace fs = std::filesystem;

namespace baton::master {

OutputCommitter::OutputCommitter(std::string dir, std::string suffix)
    : dir_(std::move(dir)), suffix_(std::move(suffix)) {
  if (!dir_.empty()) staging_ = dir_ + "/.staging";
}

std::string OutputCommitter::StagingPath(uint64_t shard_id, uint64_t token) const {
  char name[64];
  std::snprintf(name, sizeof(name), "/part-%08" PRIu64 ".t%" PRIu64, shard_id, token);
  return staging_ + name + suffix_;
}

std::string OutputCommitter::FinalPath(uint64_t shard_id) const {
  char name[48];
  std::snprintf(name, sizeof(name), "/part-%08" PRIu64, shard_id);
  return dir_ + name + suffix_;
}

Status OutputCommitter::Prepare() const {
  if (!enabled()) return Status::Ok();
  BATON_RETURN_IF_ERROR(EnsureWritableDirectory(dir_));
  return EnsureWritableDirectory(staging_);
}

Status OutputCommitter::CheckStaged(uint64_t shard_id, uint64_t token) const {
  struct stat st {};
  std::string path = StagingPath(shard_id, token);
  if (::stat(path.c_str(), &st) != 0) {
    return Status::FailedPrecondition("staged output " + path +
                                      " is missing: " + std::strerror(errno));
  }
  return Status::Ok();
}

Status OutputCommitter::Promote(uint64_t shard_id, uint64_t token) const {
  std::string from = StagingPath(shard_id, token), to = FinalPath(shard_id);
  if (::rename(from.c_str(), to.c_str()) != 0) {
    if (errno == ENOENT && ::access(to.c_str(), F_OK) == 0) return Status::Ok();  // promoted before
    return Status::IoError("promote " + from + " -> " + to + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

void OutputCommitter::Discard(uint64_t shard_id, uint64_t token) const {
  if (enabled()) ::unlink(StagingPath(shard_id, token).c_str());
}

Status OutputCommitter::Recover(const Dds& dds) const {
  if (!enabled()) return Status::Ok();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(staging_, ec)) {
    uint64_t id = 0, token = 0;
    std::string name = entry.path().filename().string();
    if (std::sscanf(name.c_str(), "part-%" SCNu64 ".t%" SCNu64, &id, &token) != 2) continue;
    std::optional<Shard> s = dds.Get(id);
    if (!s) continue;
    if (s->state == ShardState::kDone && s->token == token) {
      BATON_RETURN_IF_ERROR(Promote(id, token));
    } else if (!(s->state == ShardState::kDoing && s->token == token)) {
      ::unlink(entry.path().c_str());  // an attempt that can never commit
    }
  }
  if (ec) return Status::IoError("scan " + staging_ + ": " + ec.message());
  return Status::Ok();
}

Status OutputCommitter::Finalize(const DdsCounts& counts) const {
  if (!enabled()) return Status::Ok();
  std::error_code ec;
  fs::remove_all(staging_, ec);
  if (ec) return Status::IoError("remove " + staging_ + ": " + ec.message());
  std::string manifest = "shards_done=" + std::to_string(counts.done) +
                         "\nshards_dead=" + std::to_string(counts.dead) +
                         "\nrecords_done=" + std::to_string(counts.records_done) +
                         "\nparts=part-<shard id>" + suffix_ + "\n";
  return WriteFileAtomic(dir_ + "/_MANIFEST", manifest);
}

}  // namespace baton::master
