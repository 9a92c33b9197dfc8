// Where snapshots (train/snapshot.h) live: two slots in shared memory per node, and one file in
// the checkpoint directory written by a background thread.
//
// Memory ("flash") checkpoints: the first rank of each node writes every snapshot to one of two
// files in /dev/shm (tmpfs: a copy, no disk), always the slot that does not hold the better of
// the two, so a kill mid-write leaves the other intact. A restarted worker, or a survivor rolling
// back, restores from them in milliseconds. They outlive the processes (not a reboot) and are
// removed when the job's training finishes.
//
// Disk: rank 0 hands snapshots to a persist thread that writes
// `<dir>/snapshot-<lineage>-<branch>-<step>`
// (temporary file, fsync, rename, fsync of the directory) and then deletes the job's older ones:
// a reader sees whole snapshots only, and jobs sharing a directory never touch each other's. One
// file per key means a stale writer (an earlier rank 0 that was stopped mid-persist and resumed)
// can add an older snapshot but never hide a newer one. At most one snapshot waits while another is
// written (a newer one replaces it), so persisting never holds up a step. A shard is committed in
// the DDS only once a persisted snapshot holds all of its records (durable_step), so whatever the
// DDS considers done survives the loss of every node.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
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

  // Writes `bytes` (an encoded snapshot of `lineage`) over the slot whose snapshot ranks lower (a
  // slot that is unreadable or of another lineage ranks lowest).
  Status Write(std::string_view bytes, SnapshotKey key, uint64_t lineage);
  // The better valid slot whose lineage is `lineage`; nullopt when neither is. Also refreshes
  // what Write knows of the slots (another process of this node may have written them).
  std::optional<StoredSnapshot> ReadBest(uint64_t lineage);
  // Deletes both slots (the job's training finished).
  void Remove();
  const std::string& prefix() const { return prefix_; }

 private:
  std::string SlotPath(int slot) const { return prefix_ + "." + std::to_string(slot); }
  std::string prefix_;
  void Scan(uint64_t lineage);
  // What each slot holds of `scanned_lineage_`, once known (read by ReadBest or at the first
  // write, then tracked).
  std::optional<SnapshotKey> held_[2];
  std::optional<uint64_t> scanned_lineage_;
};

class DiskSnapshots {
 public:
  // `dir` is created on first persist.
  explicit DiskSnapshots(std::string dir);
  ~DiskSnapshots();  // waits for a persist in progress
  DiskSnapshots(const DiskSnapshots&) = delete;
  DiskSnapshots& operator=(const DiskSnapshots&) = delete;

  // Hands `bytes` to the persist thread (swapped with a spare buffer). While one is being
  // written `bytes` waits for it, replacing a snapshot that was waiting (true then: one fewer
  // snapshot persisted).
  bool PersistAsync(std::string& bytes, uint64_t lineage, SnapshotKey key);
  // Waits for a running persist, then writes `bytes` before returning.
  Status PersistNow(const std::string& bytes, uint64_t lineage, SnapshotKey key);
  // Waits until no persist is running (nor its on_persisted call).
  void Wait();
  // Called by the persist thread after each snapshot it wrote (not after PersistNow), before the
  // thread counts as idle. Set before the first persist.
  void set_on_persisted(std::function<void(uint64_t lineage, SnapshotKey key)> f) {
    on_persisted_ = std::move(f);
  }
  // The key of the latest snapshot this process persisted or read (Read); nullopt: none.
  std::optional<SnapshotKey> durable_key() const {
    const int64_t packed = durable_.load();
    if (packed < 0) return std::nullopt;
    return SnapshotKey::Unpack(packed);
  }
  // The first error of a background persist (cleared by reading it).
  Status TakeError();

  // The best snapshot of `lineage` on disk (the highest key); nullopt when there is none. An
  // unreadable one is an error naming the file (a torn file cannot be: each is renamed into place
  // whole); NotFound if the best one was deleted while being read (try again).
  Result<std::optional<StoredSnapshot>> Read(uint64_t lineage);
  const std::string& dir() const { return dir_; }

 private:
  Status Write(const std::string& bytes, uint64_t lineage, SnapshotKey key);
  void Loop();

  std::string dir_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string writing_;  // the snapshot being persisted (the thread's while busy_)
  SnapshotKey writing_key_;
  uint64_t writing_lineage_ = 0;
  std::string waiting_;  // the next one, if has_waiting_
  SnapshotKey waiting_key_;
  uint64_t waiting_lineage_ = 0;
  bool has_waiting_ = false;
  bool busy_ = false;
  bool stop_ = false;
  Status error_;
  std::atomic<int64_t> durable_{-1};  // SnapshotKey::Packed, -1: none
  std::function<void(uint64_t, SnapshotKey)> on_persisted_;
  std::thread thread_;
};

}  // namespace baton::train
