#include "train/checkpointer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <limits>
#include <random>
#include <utility>

namespace baton::train {
namespace {

using comm::DataType;
using comm::ReduceOp;

constexpr int64_t kCommittedMark = -2;  // complete_at of a gathered entry: the shard was committed

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

Checkpointer::Checkpointer(CheckpointOptions options, DataFeed& feed)
    : options_(std::move(options)), feed_(feed), disk_(options_.dir) {
  if (!options_.memory_prefix.empty()) {
    memory_ = std::make_unique<MemorySnapshots>(options_.memory_prefix);
  }
}

Result<int64_t> Checkpointer::Restore(comm::Collectives& group, const sdk::Generation& gen,
                                      const TrainingBuffers& buffers, bool had_steps) {
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 0 decides the lineage: the disk snapshot's, or a new one for a new job. (A persist still
  // running finishes first, so the disk does not change under the choice.)
  std::optional<StoredSnapshot> disk;
  int64_t lineage_and_durable[2] = {0, -1};
  if (gen.rank == 0) {
    BATON_ASSIGN_OR_RETURN(disk, disk_.Read());
    if (disk) {
      lineage_and_durable[0] = static_cast<int64_t>(disk->meta.lineage);
      lineage_and_durable[1] = disk->meta.key.step;
    } else {
      std::random_device random;
      lineage_and_durable[0] =
          static_cast<int64_t>((uint64_t{random()} << 32) ^ uint64_t{random()});
    }
  }
  BATON_RETURN_IF_ERROR(group.Broadcast(lineage_and_durable, 2, DataType::kInt64, 0));
  lineage_ = static_cast<uint64_t>(lineage_and_durable[0]);

  // Every member offers the best snapshot it can read; the best of all wins.
  std::optional<StoredSnapshot> mine = std::move(disk);
  std::string_view origin = "disk";
  if (memory_) {
    std::optional<StoredSnapshot> m = memory_->ReadBest(lineage_);
    if (m && (!mine || !(m->meta.key < mine->meta.key))) mine = std::move(m), origin = "memory";
  }
  int64_t best = mine ? mine->meta.key.Packed() : -1;
  BATON_RETURN_IF_ERROR(group.AllReduce(&best, 1, DataType::kInt64, ReduceOp::kMax));
  int64_t source =
      mine && mine->meta.key.Packed() == best ? gen.rank : std::numeric_limits<int64_t>::max();
  BATON_RETURN_IF_ERROR(group.AllReduce(&source, 1, DataType::kInt64, ReduceOp::kMin));
  branch_ = gen.id;

  if (best < 0) {
    // A new job: rank 0's initial parameters (the model file's), zero optimizer state, step 0.
    if (had_steps) {
      return Status::FailedPrecondition(
          "no checkpoint to restore, but this worker trained before: the checkpoint directory " +
          options_.dir + " was lost");
    }
    BATON_RETURN_IF_ERROR(
        group.Broadcast(buffers.params, buffers.elements, buffers.dtype, /*root=*/0));
    cursors_.clear();
    ledger_.clear();
    feed_.Restore(cursors_);
    BATON_RETURN_IF_ERROR(Take(group, gen, 0, buffers, /*persist_now=*/true));
    spdlog::info("generation {}: new job (lineage {:016x}); step 0 checkpointed", gen.id, lineage_);
    return 0;
  }

  std::string bytes;
  if (gen.rank == source) bytes = std::move(mine->bytes);
  BATON_RETURN_IF_ERROR(BroadcastBytes(group, static_cast<int>(source), &bytes));
  BATON_ASSIGN_OR_RETURN(SnapshotMeta meta,
                         DecodeSnapshot(bytes, buffers.dtype, buffers.elements, buffers.params,
                                        buffers.optimizer_state));
  cursors_ = std::move(meta.cursors);
  ledger_ = std::move(meta.ledger);
  feed_.Restore(cursors_);
  spdlog::info(
      "generation {}: restored step {} (branch {}) from rank {}'s {} in {:.0f} ms; {} shard "
      "cursor(s); on disk: step {}",
      gen.id, meta.key.step, meta.key.branch, source, gen.rank == source ? origin : "snapshot",
      MillisSince(t0), cursors_.size(), lineage_and_durable[1]);
  return meta.key.step;
}

Status Checkpointer::Take(comm::Collectives& group, const sdk::Generation& gen, int64_t step,
                          const TrainingBuffers& buffers, bool persist_now) {
  // Gather: sizes first (MAX), then one SUM over a buffer where the ledger adds up and each rank
  // fills its own block of cursor entries.
  DataFeed::Progress p = feed_.TakeProgress();
  int64_t dims[2] = {static_cast<int64_t>(p.held.size() + p.committed.size()),
                     p.applied.empty() ? 0 : p.applied.rbegin()->first + 1};
  BATON_RETURN_IF_ERROR(group.AllReduce(dims, 2, DataType::kInt64, ReduceOp::kMax));
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
  if (!to_memory && gen.rank != 0) return Status::Ok();
  const auto t0 = std::chrono::steady_clock::now();
  SnapshotMeta meta;
  meta.lineage = lineage_;
  meta.key = {branch_, step};
  meta.dtype = buffers.dtype;
  meta.elements = buffers.elements;
  meta.cursors = cursors_;
  meta.ledger = ledger_;
  std::vector<const void*> state(buffers.optimizer_state.begin(), buffers.optimizer_state.end());
  EncodeSnapshot(meta, buffers.params, state, &snapshot_);
  if (to_memory) {
    // A failed memory write loses only the fast path of a restore: the disk still has one.
    if (Status s = memory_->Write(snapshot_, meta.key); !s.ok()) {
      spdlog::warn("step {}: memory snapshot: {}", step, s.ToString());
    }
  }
  if (gen.rank == 0) {
    if (Status s = disk_.TakeError(); !s.ok()) {
      return s.WithContext("persisting a checkpoint to " + options_.dir);
    }
    if (persist_now) {
      BATON_RETURN_IF_ERROR(disk_.PersistNow(snapshot_, meta.key)
                                .WithContext("persisting a checkpoint to " + options_.dir));
    } else if (!disk_.PersistAsync(snapshot_, meta.key)) {
      ++persists_skipped_;  // the previous one is still being written; a later one will be
    }
  }
  spdlog::debug("step {}: snapshot of {} bytes in {:.1f} ms", step, snapshot_.size(),
                MillisSince(t0));
  return Status::Ok();
}

void Checkpointer::Finish(const sdk::Generation& gen) {
  disk_.Wait();
  if (memory_ && gen.local_rank() == 0) memory_->Remove();
}

}  // namespace baton::train
