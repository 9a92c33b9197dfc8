// Snapshot: one training state as bytes — parameters, optimizer state and the data progress that
// goes with them (which records of which shards were applied) — so that a restored job applies
// every record exactly once per epoch. The trainer writes one every train.checkpoint.every_steps
// to shared memory and to disk (train/checkpoint_store.h) and restores the best one when a
// generation forms.
//
// Order: a snapshot carries the generation that started its branch (the generation in which the
// trainer restored the snapshot it grew from) and its step. Snapshots are ranked by (branch,
// step): a snapshot of an abandoned branch (steps taken after the restore point by members that
// rolled back) never outranks one of the branch that replaced it. The lineage (a random id made
// when a job first starts) keeps a snapshot of an earlier job with the same name, left in shared
// memory, from ever being restored into a new one.
//
// Integrity: an XXH3-64 checksum (libxxhash) over the header and payload; a snapshot cut short by
// a kill or a full disk fails to parse and is never restored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "comm/types.h"
#include "common/status.h"

namespace baton::train {

// How far a shard's records were applied: `applied` rows (in the shard's parse order; bad and
// blank lines are not rows), and the step after which all of them were (-1 while rows are left).
struct ShardCursor {
  int64_t applied = 0;
  int64_t complete_at = -1;
  bool operator==(const ShardCursor&) const = default;
};
using CursorTable = std::map<uint64_t, ShardCursor>;  // by DDS shard id

// What was applied, per epoch: the number of records and an order-independent fingerprint (the
// sum modulo 2^64 of RecordFingerprint over them). Two multisets of records agree on both with
// overwhelming probability only when they are equal: a record applied twice or missed shows.
struct EpochLedger {
  uint64_t records = 0;
  uint64_t fingerprint = 0;
  bool operator==(const EpochLedger&) const = default;
};
using Ledger = std::map<int32_t, EpochLedger>;  // by epoch (0-based)

// The identity of record `index` (0-based, counting every line after any header) of `path`.
uint64_t RecordFingerprint(std::string_view path, uint64_t index);

struct SnapshotKey {
  int64_t branch = 0;
  int64_t step = 0;
  auto operator<=>(const SnapshotKey&) const = default;
  // One int64 that orders like the pair (for a MAX all-reduce): branch < 2^31, step < 2^32.
  int64_t Packed() const { return (branch << 32) | step; }
  static SnapshotKey Unpack(int64_t v) { return {v >> 32, v & 0xffffffffLL}; }
};

// What a snapshot holds besides the flat buffers.
struct SnapshotMeta {
  uint64_t lineage = 0;
  SnapshotKey key;
  comm::DataType dtype = comm::DataType::kFloat32;
  uint64_t elements = 0;  // of the parameters and of each optimizer state buffer
  CursorTable cursors;
  Ledger ledger;
};

// Encodes `meta` and the buffers (`elements` values of `dtype` each: the parameters, then every
// optimizer state buffer) into `out` (replaced).
// `extra` is a job kind's variable-size part (G-Meta's embedding table), kept as given.
void EncodeSnapshot(const SnapshotMeta& meta, const void* params,
                    const std::vector<const void*>& optimizer_state, std::string* out,
                    std::string_view extra = {});

// The header alone (lineage, key, sizes), checked against the checksum of the whole snapshot.
// IoError for a torn, truncated or foreign file, saying what was wrong.
Result<SnapshotMeta> DecodeSnapshotMeta(std::string_view bytes);

// Decodes everything: `params` and each of `optimizer_state` receive `meta.elements` values, and
// must be the sizes and type the snapshot says (FailedPrecondition otherwise: another model).
// `extra`, when given, receives the extra part (empty when the snapshot has none).
Result<SnapshotMeta> DecodeSnapshot(std::string_view bytes, comm::DataType dtype, size_t elements,
                                    void* params, const std::vector<void*>& optimizer_state,
                                    std::string* extra = nullptr);

}  // namespace baton::train
