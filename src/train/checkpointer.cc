#include "train/checkpointer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <utility>

namespace baton::train {
namespace {

using comm::DataType;
using comm::ReduceOp;

constexpr int64_t kCommittedMark = -2;  // complete_at of a gathered entry: the shard was committed
// Set to 1 once the record exists: Add(key, 0) reads it without waiting (Get waits for a key).
constexpr std::string_view kRecordWrittenKey = "train.checkpoint.written";

double MillisSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Broadcasts `bytes` (any length) from `root`; others' `bytes` are replaced.
Status BroadcastBytes(comm::Collectives& group, int root, std::string* bytes) {
  int64_t size = static_cast<int64_t>(bytes->size());
  BATON_RETURN_IF_ERROR(group.Broadcast(&size, 1, DataType::kInt64, root));
  const size_t words = (static_cast<size_t>(size) + 7) / 8;
  std::vector<int64_t> buffer(words, 0);
  if (group.rank() == root) std::memcpy(buffer.data(), bytes->data(), bytes->size());
  BATON_RETURN_IF_ERROR(group.Broadcast(buffer.data(), words, DataType::kInt64, root));
  bytes->assign(reinterpret_cast<const char*>(buffer.data()), static_cast<size_t>(size));
  return Status::Ok();
}

}  // namespace

Checkpointer::Checkpointer(CheckpointOptions options, DataFeed& feed,
                           std::shared_ptr<comm::Store> job_store)
    : options_(std::move(options)),
      feed_(feed),
      job_store_(std::move(job_store)),
      disk_(options_.dir) {
  if (!options_.memory_prefix.empty()) {
    memory_ = std::make_unique<MemorySnapshots>(options_.memory_prefix);
  }
  // Restore waits for the persist thread before it changes lineage_ or branch_.
  disk_.set_on_persisted([this](uint64_t lineage, SnapshotKey key) {
    if (lineage != lineage_ || key.branch != branch_) return;  // a persist of an earlier role
    if (key.Packed() <= recorded_.load()) return;
    // Best effort: a failed record leaves the commits waiting for the next persist's.
    if (Status s = WriteRecord(key); !s.ok()) spdlog::warn("checkpoint record: {}", s.ToString());
  });
}

Status Checkpointer::WriteRecord(SnapshotKey key) {
  char value[80];
  std::snprintf(value, sizeof(value), "%016" PRIx64 " %lld %lld", lineage_,
                static_cast<long long>(key.branch), static_cast<long long>(key.step));
  BATON_RETURN_IF_ERROR(job_store_->Set(std::string(kCheckpointRecordKey), value));
  BATON_RETURN_IF_ERROR(job_store_->Add(std::string(kRecordWrittenKey), 1).status());
  recorded_.store(key.Packed());
  return Status::Ok();
}

Status Checkpointer::DecideLineage(std::optional<StoredSnapshot>* disk, bool* fresh) {
  BATON_ASSIGN_OR_RETURN(int64_t written, job_store_->Add(std::string(kRecordWrittenKey), 0));
  *fresh = written == 0;
  recorded_.store(-1);
  if (*fresh) {
    // A new job. Snapshots in the directory are of other lineages (another job, or this job
    // name's earlier life): never read, never deleted.
    std::random_device random;
    lineage_ = (uint64_t{random()} << 32) ^ uint64_t { random() };
    return Status::Ok();
  }
  BATON_ASSIGN_OR_RETURN(std::string record, job_store_->Get(std::string(kCheckpointRecordKey),
                                                             std::chrono::seconds(10)));
  unsigned long long lineage = 0;
  long long branch = 0, step = 0;
  if (std::sscanf(record.c_str(), "%llx %lld %lld", &lineage, &branch, &step) != 3) {
    return Status::Internal("the master's checkpoint record is malformed: \"" + record + "\"");
  }
  lineage_ = lineage;
  const SnapshotKey on_record{branch, step};
  BATON_ASSIGN_OR_RETURN(*disk, disk_.Read(lineage_));
  if (!*disk || (*disk)->meta.key < on_record) {
    return Status::FailedPrecondition(
        "checkpoint directory " + options_.dir + " holds no snapshot as new as the one this job " +
        "persisted (branch " + std::to_string(branch) + ", step " + std::to_string(step) +
        (*disk ? "; the newest there is step " + std::to_string((*disk)->meta.key.step) : "") +
        "): train.checkpoint.dir must be one directory every node sees, kept while the job "
        "lives");
  }
  recorded_.store(on_record.Packed());
  return Status::Ok();
}

Result<int64_t> Checkpointer::Restore(comm::Collectives& group, const sdk::Generation& gen,
                                      const TrainingBuffers& buffers, bool had_steps) {
  const auto t0 = std::chrono::steady_clock::now();
  // A persist of this process still running (it was rank 0 of an earlier generation) lands
  // before anything is decided, so that the disk does not change under the choice; an error of
  // one is of that earlier role (the persist flag of the steps reported it then).
  disk_.Wait();
  if (Status s = disk_.TakeError(); !s.ok()) spdlog::warn("an earlier persist: {}", s.ToString());
  persist_error_ = Status::Ok();
  int64_t any_trained = had_steps ? 1 : 0;
  BATON_RETURN_IF_ERROR(group.AllReduce(&any_trained, 1, DataType::kInt64, ReduceOp::kMax));
  std::optional<StoredSnapshot> disk;
  bool fresh = false;
  Status decided;
  enum : int64_t { kGo, kRetry, kStop };
  int64_t header[3] = {kGo, 0, 0};  // what to do, lineage, fresh
  if (gen.rank == 0) {
    decided = DecideLineage(&disk, &fresh);
    if (decided.ok() && fresh && any_trained != 0) {
      decided = Status::FailedPrecondition(
          "the master has no checkpoint record, but workers of this job trained before: the "
          "master's state was lost");
    }
    // The master unreachable or slow, a snapshot deleted while read (a newer one landed): every
    // member joins again. Anything else stops them all.
    const StatusCode c = decided.code();
    header[0] = decided.ok() ? kGo
                : c == StatusCode::kUnavailable || c == StatusCode::kDeadlineExceeded ||
                        c == StatusCode::kNotFound
                    ? kRetry
                    : kStop;
    header[1] = static_cast<int64_t>(lineage_);
    header[2] = fresh ? 1 : 0;
  }
  BATON_RETURN_IF_ERROR(group.Broadcast(header, 3, DataType::kInt64, 0));
  if (header[0] == kRetry) {
    return Status::Unavailable(gen.rank == 0 ? decided.ToString()
                                             : "rank 0 could not decide what to restore yet");
  }
  if (header[0] == kStop) {
    if (gen.rank == 0) return decided;
    return Status::FailedPrecondition("rank 0 could not restore a checkpoint (its log says why)");
  }
  lineage_ = static_cast<uint64_t>(header[1]);
  branch_ = gen.id;

  if (header[2] == 1) {
    // A new job: rank 0's initial parameters (the model file's), zero optimizer state, step 0,
    // persisted and on the master's record before the first step.
    BATON_RETURN_IF_ERROR(
        group.Broadcast(buffers.params, buffers.elements, buffers.dtype, /*root=*/0));
    if (buffers.extra != nullptr) BATON_RETURN_IF_ERROR(BroadcastBytes(group, 0, buffers.extra));
    cursors_.clear();
    ledger_.clear();
    feed_.Restore(cursors_);
    BATON_ASSIGN_OR_RETURN(Outcome outcome, Take(group, gen, 0, buffers));
    if (outcome != Outcome::kTaken) return Status::Unavailable("step 0 could not be checkpointed");
    if (gen.rank == 0) {
      // Peers wait in the first step's all-reduce meanwhile (a model's worth of disk writing).
      disk_.Wait();
      BATON_RETURN_IF_ERROR(disk_.TakeError().WithContext("persisting step 0 to " + options_.dir));
      BATON_RETURN_IF_ERROR(WriteRecord({branch_, 0}));
    }
    spdlog::info("generation {}: new job (lineage {:016x}); step 0 checkpointed", gen.id, lineage_);
    return 0;
  }

  // Every member offers the best snapshot it can read; the best of all wins (memory on a tie:
  // the same snapshot, read faster).
  std::optional<StoredSnapshot> mine = std::move(disk);
  std::string_view origin = "disk";
  if (memory_) {
    std::optional<StoredSnapshot> m = memory_->ReadBest(lineage_);
    if (m && (!mine || !(m->meta.key < mine->meta.key))) mine = std::move(m), origin = "memory";
  }
  int64_t best = mine ? mine->meta.key.Packed() : -1;
  BATON_RETURN_IF_ERROR(group.AllReduce(&best, 1, DataType::kInt64, ReduceOp::kMax));
  if (best < 0) {
    return Status::FailedPrecondition("no member can read a snapshot of this job (lineage " +
                                      std::to_string(lineage_) + ")");
  }
  int64_t source =
      mine && mine->meta.key.Packed() == best ? gen.rank : std::numeric_limits<int64_t>::max();
  BATON_RETURN_IF_ERROR(group.AllReduce(&source, 1, DataType::kInt64, ReduceOp::kMin));
  std::string bytes;
  if (gen.rank == source) bytes = std::move(mine->bytes);
  BATON_RETURN_IF_ERROR(BroadcastBytes(group, static_cast<int>(source), &bytes));
  BATON_ASSIGN_OR_RETURN(SnapshotMeta meta,
                         DecodeSnapshot(bytes, buffers.dtype, buffers.elements, buffers.params,
                                        buffers.optimizer_state, buffers.extra));
  cursors_ = std::move(meta.cursors);
  ledger_ = std::move(meta.ledger);
  feed_.Restore(cursors_);
  spdlog::info(
      "generation {}: restored step {} (branch {}) from rank {}'s {} in {:.0f} ms; {} shard "
      "cursor(s)",
      gen.id, meta.key.step, meta.key.branch, source, gen.rank == source ? origin : "snapshot",
      MillisSince(t0), cursors_.size());
  return meta.key.step;
}

Result<Checkpointer::Outcome> Checkpointer::Take(comm::Collectives& group,
                                                 const sdk::Generation& gen, int64_t step,
                                                 const TrainingBuffers& buffers) {
  const auto t0 = std::chrono::steady_clock::now();
  // Leases first: a progress whose lease was lost (the master gave the shard to another rank)
  // must never be recorded. Then sizes (MAX), then one SUM over a buffer where the ledger adds
  // up and each rank fills its own block of cursor entries.
  const bool confirmed = feed_.ConfirmLeases().ok();
  const DataFeed::Progress& p = feed_.progress();
  int64_t dims[4] = {static_cast<int64_t>(p.held.size() + p.committed.size()),
                     p.applied.empty() ? 0 : p.applied.rbegin()->first + 1,
                     feed_.lost() > 0 ? 1 : 0, confirmed ? 0 : 1};
  BATON_RETURN_IF_ERROR(group.AllReduce(dims, 4, DataType::kInt64, ReduceOp::kMax));
  if (dims[2] != 0) return Outcome::kLeaseLost;
  if (dims[3] != 0) {
    spdlog::warn("step {}: no checkpoint (a rank could not confirm its leases)", step);
    return Outcome::kSkipped;
  }
  const auto entries = static_cast<size_t>(dims[0]), epochs = static_cast<size_t>(dims[1]);
  std::vector<int64_t> gathered(3 * epochs + 3 * entries * static_cast<size_t>(gen.size()), 0);
  for (const auto& [epoch, l] : p.applied) {
    // The fingerprint travels as two 32-bit halves so that the int64 sums cannot overflow.
    int64_t* e = &gathered[3 * static_cast<size_t>(epoch)];
    e[0] = static_cast<int64_t>(l.records);
    e[1] = static_cast<int64_t>(l.fingerprint & 0xffffffffULL);
    e[2] = static_cast<int64_t>(l.fingerprint >> 32);
  }
  int64_t* mine = &gathered[3 * epochs + 3 * entries * static_cast<size_t>(gen.rank)];
  for (const auto& [shard, cursor] : p.held) {
    *mine++ = static_cast<int64_t>(shard) + 1;  // 0 marks an unused entry
    *mine++ = cursor.applied;
    *mine++ = cursor.complete_at;
  }
  for (uint64_t shard : p.committed) {
    *mine++ = static_cast<int64_t>(shard) + 1;
    *mine++ = 0;
    *mine++ = kCommittedMark;
  }
  BATON_RETURN_IF_ERROR(
      group.AllReduce(gathered.data(), gathered.size(), DataType::kInt64, ReduceOp::kSum));
  feed_.ProgressRecorded();
  ++stats_.taken;
  for (size_t e = 0; e < epochs; ++e) {
    const auto records = static_cast<uint64_t>(gathered[3 * e]);
    if (records == 0) continue;
    EpochLedger& l = ledger_[static_cast<int32_t>(e)];
    l.records += records;
    l.fingerprint += static_cast<uint64_t>(gathered[3 * e + 1]) +
                     (static_cast<uint64_t>(gathered[3 * e + 2]) << 32);
  }
  for (size_t i = 3 * epochs; i < gathered.size(); i += 3) {
    if (gathered[i] == 0) continue;
    const auto shard = static_cast<uint64_t>(gathered[i] - 1);
    if (gathered[i + 2] == kCommittedMark) {
      cursors_.erase(shard);
    } else {
      cursors_[shard] = {gathered[i + 1], gathered[i + 2]};
    }
  }
  feed_.SetCursors(cursors_);

  // The first rank of each node keeps the snapshot in its node's memory; rank 0 also persists it.
  const bool to_memory = memory_ && gen.local_rank() == 0;
  if (to_memory || gen.rank == 0) {
    SnapshotMeta meta;
    meta.lineage = lineage_;
    meta.key = {branch_, step};
    meta.dtype = buffers.dtype;
    meta.elements = buffers.elements;
    meta.cursors = cursors_;
    meta.ledger = ledger_;
    std::vector<const void*> state(buffers.optimizer_state.begin(), buffers.optimizer_state.end());
    EncodeSnapshot(
        meta, buffers.params, state, &snapshot_,
        buffers.extra != nullptr ? std::string_view(*buffers.extra) : std::string_view());
    stats_.bytes = snapshot_.size();
    if (to_memory) {
      // A failed memory write loses only the fast path of a restore: the disk still has one.
      if (Status s = memory_->Write(snapshot_, meta.key, lineage_); !s.ok()) {
        spdlog::warn("step {}: memory snapshot: {}", step, s.ToString());
      }
    }
    if (gen.rank == 0 && disk_.PersistAsync(snapshot_, lineage_, meta.key)) {
      ++stats_.persists_skipped;
    }
  }
  stats_.ms += MillisSince(t0);
  return Outcome::kTaken;
}

int64_t Checkpointer::CommittableStep() {
  if (Status s = disk_.TakeError(); !s.ok() && persist_error_.ok()) {
    persist_error_ = s.WithContext("persisting a checkpoint to " + options_.dir);
  }
  // Only a snapshot of this branch, persisted by this process, is known to hold this timeline's
  // rows: a snapshot of an earlier branch may be of steps that were rolled back (a stale writer's
  // late file, say). So after a restore, commits wait for the branch's first persist (recorded
  // by the persist thread, on_persisted above).
  const int64_t recorded = recorded_.load();
  if (recorded < 0) return -1;
  const SnapshotKey key = SnapshotKey::Unpack(recorded);
  return key.branch == branch_ ? key.step : -1;
}

void Checkpointer::Finish(const sdk::Generation& gen, bool training_done) {
  disk_.Wait();
  if (training_done && memory_ && gen.local_rank() == 0) memory_->Remove();
}

std::string NodeMemoryPrefix(const sdk::WorkerIdentity& id, const std::string& checkpoint_dir) {
  std::string name = "baton-" + id.job_id + "-" + id.node_id;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') c = '_';
  }
  char hex[20];
  std::snprintf(hex, sizeof(hex), "-%016zx", std::hash<std::string>{}(checkpoint_dir));
  return "/dev/shm/" + name.substr(0, 160) + hex;
}

}  // namespace baton::train
