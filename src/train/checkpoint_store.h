// Where snapshots (train/snapshot.h) live: two slots in shared memory per node, and one file in
// the checkpoint directory written by a background thread.
//
// Memory ("flash") checkpoints: the first rank of each node writes every snapshot to one of two
// files in /dev/shm (tmpfs: a copy, no disk), always the slot that does not hold the better of
// the two, so a kill mid-write leaves the other intact. A restarted worker, or a survivor rolling
// back, restores from them in milliseconds. They outlive the processes (not a reboot) and are
// removed when the job's training finishes.
//
// Disk: rank 0 hands snapshots to a persist thread that writes `<dir>/snapshot` (temporary file,
// fsync, rename, fsync of the directory): a reader sees the previous snapshot or the new one,
// never a mix. While one is being written, newer ones are not queued (the next one after it
// finishes is taken), so persisting never holds up a step. A shard is committed in the DDS only
// once a persisted snapshot holds all of its records (durable_step), so whatever the DDS
// considers done survives the loss of every node.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/status.h"
#include "train/snapshot.h"

namespace baton::train {

// A snapshot read back whole, with its decoded header.
struct StoredSnapshot {
  SnapshotMeta meta;
  std::string bytes;
};

class MemorySnapshots {
 public:
  // Slots `<prefix>.0` and `<prefix>.1` (e.g. /dev/shm/baton-JOB-NODE).
  explicit MemorySnapshots(std::string prefix);

  // Writes `bytes` (an encoded snapshot) over the slot whose snapshot ranks lower (an unreadable
  // slot ranks lowest).
  Status Write(std::string_view bytes, SnapshotKey key);
  // The better valid slot whose lineage is `lineage`; nullopt when neither is.
  std::optional<StoredSnapshot> ReadBest(uint64_t lineage) const;
  // Deletes both slots (the job's training finished).
  void Remove();
  const std::string& prefix() const { return prefix_; }

 private:
  std::string SlotPath(int slot) const { return prefix_ + "." + std::to_string(slot); }
  std::string prefix_;
  // What each slot holds, once known (read at the first write, then tracked).
  std::optional<SnapshotKey> held_[2];
  bool scanned_ = false;
};

class DiskSnapshots {
 public:
  // `dir` is created on first persist. File: `<dir>/snapshot`.
  explicit DiskSnapshots(std::string dir);
  ~DiskSnapshots();  // waits for a persist in progress
  DiskSnapshots(const DiskSnapshots&) = delete;
  DiskSnapshots& operator=(const DiskSnapshots&) = delete;

  // Hands `bytes` to the persist thread; false (and `bytes` untouched) while one is running.
  bool PersistAsync(std::string& bytes, SnapshotKey key);
  // Waits for a running persist, then writes `bytes` before returning.
  Status PersistNow(const std::string& bytes, SnapshotKey key);
  // Waits until no persist is running.
  void Wait();
  // The step of the latest snapshot on disk (from this process or read at Read()); -1: none.
  int64_t durable_step() const { return durable_step_.load(); }
  // The first error of a background persist (cleared by reading it).
  Status TakeError();

  // The snapshot on disk; nullopt when there is none. An unreadable one is an error (a torn file
  // cannot be: it is renamed into place whole).
  Result<std::optional<StoredSnapshot>> Read();
  const std::string& dir() const { return dir_; }

 private:
  Status Write(const std::string& bytes, SnapshotKey key);
  void Loop();

  std::string dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;  // the snapshot being persisted (owned by the thread while busy_)
  SnapshotKey pending_key_;
  bool busy_ = false;
  bool stop_ = false;
  Status error_;
  std::atomic<int64_t> durable_step_{-1};
  std::thread thread_;
};

}  // namespace baton::train
