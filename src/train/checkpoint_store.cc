#include "train/checkpoint_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "common/files.h"

namespace baton::train {
namespace {

// Writes `bytes` over `path` in place: no temporary file (the other slot is the fallback, and the
// checksum tells a slot a kill cut short or mixed), and no truncation first, so that tmpfs reuses
// the slot's pages instead of freeing and faulting them in again (12 MiB here: 1.4 ms against
// 17 ms with O_TRUNC).
Status Overwrite(const std::string& path, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError("create " + path + ": " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = ::pwrite(fd, bytes.data() + off, bytes.size() - off, static_cast<off_t>(off));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status s = Status::IoError("write " + path + ": " + std::strerror(errno));
      ::close(fd);
      return s;
    }
    off += static_cast<size_t>(n);
  }
  if (::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) {
    Status s = Status::IoError("truncate " + path + ": " + std::strerror(errno));
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return Status::IoError("close " + path + ": " + std::strerror(errno));
  return Status::Ok();
}

std::optional<StoredSnapshot> ReadValid(const std::string& path) {
  Result<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return std::nullopt;
  Result<SnapshotMeta> meta = DecodeSnapshotMeta(*bytes);
  if (!meta.ok()) return std::nullopt;
  return StoredSnapshot{std::move(*meta), std::move(*bytes)};
}

}  // namespace

MemorySnapshots::MemorySnapshots(std::string prefix) : prefix_(std::move(prefix)) {}

Status MemorySnapshots::Write(std::string_view bytes, SnapshotKey key) {
  if (!scanned_) {
    for (int slot = 0; slot < 2; ++slot) {
      if (auto s = ReadValid(SlotPath(slot))) held_[slot] = s->meta.key;
    }
    scanned_ = true;
  }
  // Overwrite the slot that ranks lower, so that the better one survives a kill mid-write.
  int slot = 0;
  if (!held_[0]) {
    slot = 0;
  } else if (!held_[1]) {
    slot = 1;
  } else {
    slot = *held_[0] < *held_[1] ? 0 : 1;
  }
  held_[slot].reset();
  BATON_RETURN_IF_ERROR(Overwrite(SlotPath(slot), bytes));
  held_[slot] = key;
  return Status::Ok();
}

std::optional<StoredSnapshot> MemorySnapshots::ReadBest(uint64_t lineage) const {
  std::optional<StoredSnapshot> best;
  for (int slot = 0; slot < 2; ++slot) {
    std::optional<StoredSnapshot> s = ReadValid(SlotPath(slot));
    if (!s || s->meta.lineage != lineage) continue;
    if (!best || best->meta.key < s->meta.key) best = std::move(s);
  }
  return best;
}

void MemorySnapshots::Remove() {
  for (int slot = 0; slot < 2; ++slot) std::remove(SlotPath(slot).c_str());
  held_[0].reset();
  held_[1].reset();
}

DiskSnapshots::DiskSnapshots(std::string dir) : dir_(std::move(dir)) {
  thread_ = std::thread([this] { Loop(); });
}

DiskSnapshots::~DiskSnapshots() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

Status DiskSnapshots::Write(const std::string& bytes, SnapshotKey key) {
  BATON_RETURN_IF_ERROR(EnsureWritableDirectory(dir_));
  BATON_RETURN_IF_ERROR(WriteFileAtomic(dir_ + "/snapshot", bytes, 0600));
  durable_step_.store(key.step);
  return Status::Ok();
}

void DiskSnapshots::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || busy_; });
    if (!busy_) return;  // stopping, nothing pending
    lock.unlock();
    Status s = Write(pending_, pending_key_);
    lock.lock();
    if (!s.ok() && error_.ok()) error_ = s;
    busy_ = false;
    cv_.notify_all();
  }
}

bool DiskSnapshots::PersistAsync(std::string& bytes, SnapshotKey key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (busy_) return false;
    pending_.swap(bytes);
    pending_key_ = key;
    busy_ = true;
  }
  cv_.notify_all();
  return true;
}

void DiskSnapshots::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !busy_; });
}

Status DiskSnapshots::PersistNow(const std::string& bytes, SnapshotKey key) {
  Wait();
  return Write(bytes, key);
}

Status DiskSnapshots::TakeError() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(error_, Status::Ok());
}

Result<std::optional<StoredSnapshot>> DiskSnapshots::Read() {
  Wait();
  const std::string path = dir_ + "/snapshot";
  if (::access(path.c_str(), F_OK) != 0) return std::optional<StoredSnapshot>();
  BATON_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  Result<SnapshotMeta> meta = DecodeSnapshotMeta(bytes);
  if (!meta.ok()) return meta.status().WithContext(path);
  durable_step_.store(meta->key.step);
  return std::optional<StoredSnapshot>(StoredSnapshot{std::move(*meta), std::move(bytes)});
}

}  // namespace baton::train
