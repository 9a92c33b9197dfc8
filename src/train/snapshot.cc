#include "train/snapshot.h"

#include <xxhash.h>

#include <cstddef>
#include <cstring>

namespace baton::train {
namespace {

constexpr uint64_t kMagic = 0x50414e534e544142ULL;  // "BATNSNAP" read little-endian
constexpr uint32_t kFormat = 2;                     // 2: the extra part

// Format 1 is the first 88 bytes (through checksum); format 2 appends extra_bytes. Format 1 is
// still read (extra_bytes 0), so that a job checkpointed by an earlier baton resumes after an
// upgrade.
struct Header {
  uint64_t magic = kMagic;
  uint32_t format = kFormat;
  uint32_t dtype = 0;
  uint64_t lineage = 0;
  int64_t branch = 0;
  int64_t step = 0;
  uint64_t elements = 0;
  uint64_t state_buffers = 0;
  uint64_t cursors = 0;
  uint64_t ledger = 0;
  uint64_t payload_bytes = 0;
  uint64_t checksum = 0;     // XXH3-64 of the header (this field 0) and the payload
  uint64_t extra_bytes = 0;  // format 2: the job kind's variable-size part, after the buffers
};
static_assert(sizeof(Header) == 96);
constexpr size_t kHeaderV1Bytes = offsetof(Header, extra_bytes);
static_assert(kHeaderV1Bytes == 88);

struct CursorEntry {
  uint64_t shard;
  int64_t applied;
  int64_t complete_at;
};
struct LedgerEntry {
  int64_t epoch;
  uint64_t records;
  uint64_t fingerprint;
};

// XXH3 (libxxhash) runs at memory speed, so checking a snapshot costs about one more copy of it.
// Over the first `header_bytes` of the header (its format's) and the payload.
uint64_t Checksum(const Header& h, size_t header_bytes, std::string_view payload) {
  Header zeroed = h;
  zeroed.checksum = 0;
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  XXH3_64bits_update(state, &zeroed, header_bytes);
  XXH3_64bits_update(state, payload.data(), payload.size());
  const uint64_t digest = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  return digest;
}

uint64_t Mix(uint64_t x) {  // splitmix64's finalizer: every input bit moves every output bit
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A snapshot's header (format 1 read into the current layout, extra_bytes 0) and where its
// payload starts.
struct Parsed {
  Header h;
  size_t header_bytes = sizeof(Header);
};

Result<Parsed> ReadHeader(std::string_view bytes) {
  Parsed p;
  Header& h = p.h;
  if (bytes.size() < kHeaderV1Bytes) {
    return Status::IoError("snapshot of " + std::to_string(bytes.size()) +
                           " bytes is shorter than its header");
  }
  std::memcpy(static_cast<void*>(&h), bytes.data(), kHeaderV1Bytes);  // extra_bytes stays 0
  if (h.magic != kMagic) return Status::IoError("not a baton snapshot (bad magic)");
  if (h.format == 1) {
    p.header_bytes = kHeaderV1Bytes;
    h.extra_bytes = 0;
  } else if (h.format != kFormat) {
    return Status::IoError("snapshot format " + std::to_string(h.format) + ", expected " +
                           std::to_string(kFormat) + " or 1");
  } else if (bytes.size() < sizeof(Header)) {
    return Status::IoError("snapshot of " + std::to_string(bytes.size()) +
                           " bytes is shorter than its header");
  } else {
    std::memcpy(&h, bytes.data(), sizeof(h));
  }
  if (h.dtype > static_cast<uint32_t>(comm::DataType::kBFloat16)) {
    return Status::IoError("snapshot with an unknown element type");
  }
  if (bytes.size() - p.header_bytes != h.payload_bytes) {
    return Status::IoError("snapshot cut short: " + std::to_string(bytes.size() - p.header_bytes) +
                           " payload bytes of " + std::to_string(h.payload_bytes));
  }
  const uint64_t esize = ElementSize(static_cast<comm::DataType>(h.dtype));
  // Checked in pieces so that no product overflows before the comparison.
  const uint64_t limit = h.payload_bytes;
  if (h.state_buffers > 16 || h.elements > limit / esize ||
      h.elements * esize > limit / (1 + h.state_buffers) ||
      h.cursors > limit / sizeof(CursorEntry) || h.ledger > limit / sizeof(LedgerEntry) ||
      h.extra_bytes > limit ||
      (1 + h.state_buffers) * h.elements * esize + h.extra_bytes + h.cursors * sizeof(CursorEntry) +
              h.ledger * sizeof(LedgerEntry) !=
          h.payload_bytes) {
    return Status::IoError("snapshot header does not match its payload");
  }
  if (Checksum(h, p.header_bytes, bytes.substr(p.header_bytes)) != h.checksum) {
    return Status::IoError("snapshot checksum mismatch (torn or corrupted)");
  }
  return p;
}

SnapshotMeta MetaOf(const Parsed& p, std::string_view bytes) {
  const Header& h = p.h;
  SnapshotMeta m;
  m.lineage = h.lineage;
  m.key = {h.branch, h.step};
  m.dtype = static_cast<comm::DataType>(h.dtype);
  m.elements = h.elements;
  const size_t buffers =
      (1 + h.state_buffers) * h.elements * ElementSize(static_cast<comm::DataType>(h.dtype));
  const char* at = bytes.data() + p.header_bytes + buffers + h.extra_bytes;
  for (uint64_t i = 0; i < h.cursors; ++i, at += sizeof(CursorEntry)) {
    CursorEntry e;
    std::memcpy(&e, at, sizeof(e));
    m.cursors[e.shard] = {e.applied, e.complete_at};
  }
  for (uint64_t i = 0; i < h.ledger; ++i, at += sizeof(LedgerEntry)) {
    LedgerEntry e;
    std::memcpy(&e, at, sizeof(e));
    m.ledger[static_cast<int32_t>(e.epoch)] = {e.records, e.fingerprint};
  }
  return m;
}

}  // namespace

uint64_t RecordFingerprint(std::string_view path, uint64_t index) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a over the path, then mixed with the index
  for (char c : path) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return Mix(h ^ Mix(index + 0x9e3779b97f4a7c15ULL));
}

void EncodeSnapshot(const SnapshotMeta& meta, const void* params,
                    const std::vector<const void*>& optimizer_state, std::string* out,
                    std::string_view extra) {
  Header h;
  h.dtype = static_cast<uint32_t>(meta.dtype);
  h.lineage = meta.lineage;
  h.branch = meta.key.branch;
  h.step = meta.key.step;
  h.elements = meta.elements;
  h.state_buffers = optimizer_state.size();
  h.cursors = meta.cursors.size();
  h.ledger = meta.ledger.size();
  h.extra_bytes = extra.size();
  const size_t bytes = meta.elements * ElementSize(meta.dtype);
  h.payload_bytes = (1 + optimizer_state.size()) * bytes + extra.size() +
                    h.cursors * sizeof(CursorEntry) + h.ledger * sizeof(LedgerEntry);
  out->resize(sizeof(Header) + h.payload_bytes);
  char* p = out->data() + sizeof(Header);
  std::memcpy(p, params, bytes);
  p += bytes;
  for (const void* state : optimizer_state) {
    std::memcpy(p, state, bytes);
    p += bytes;
  }
  if (!extra.empty()) std::memcpy(p, extra.data(), extra.size());
  p += extra.size();
  for (const auto& [shard, c] : meta.cursors) {
    const CursorEntry e{shard, c.applied, c.complete_at};
    std::memcpy(p, &e, sizeof(e));
    p += sizeof(e);
  }
  for (const auto& [epoch, l] : meta.ledger) {
    const LedgerEntry e{epoch, l.records, l.fingerprint};
    std::memcpy(p, &e, sizeof(e));
    p += sizeof(e);
  }
  h.checksum = Checksum(h, sizeof(Header), std::string_view(*out).substr(sizeof(Header)));
  std::memcpy(out->data(), &h, sizeof(h));
}

Result<SnapshotMeta> DecodeSnapshotMeta(std::string_view bytes) {
  BATON_ASSIGN_OR_RETURN(Parsed parsed, ReadHeader(bytes));
  return MetaOf(parsed, bytes);
}

Result<SnapshotMeta> DecodeSnapshot(std::string_view bytes, comm::DataType dtype, size_t elements,
                                    void* params, const std::vector<void*>& optimizer_state,
                                    std::string* extra) {
  BATON_ASSIGN_OR_RETURN(Parsed parsed, ReadHeader(bytes));
  const Header& h = parsed.h;
  if (h.dtype != static_cast<uint32_t>(dtype) || h.elements != elements ||
      h.state_buffers != optimizer_state.size()) {
    return Status::FailedPrecondition(
        "the snapshot is of another model or optimizer: " + std::to_string(h.elements) + " " +
        std::string(DataTypeName(static_cast<comm::DataType>(h.dtype))) + " parameters and " +
        std::to_string(h.state_buffers) + " state buffer(s), expected " + std::to_string(elements) +
        " " + std::string(DataTypeName(dtype)) + " and " + std::to_string(optimizer_state.size()));
  }
  const size_t bytes_each = elements * ElementSize(dtype);
  const char* p = bytes.data() + parsed.header_bytes;
  std::memcpy(params, p, bytes_each);
  for (void* state : optimizer_state) {
    p += bytes_each;
    std::memcpy(state, p, bytes_each);
  }
  p += bytes_each;
  if (extra != nullptr) extra->assign(p, h.extra_bytes);
  return MetaOf(parsed, bytes);
}

}  // namespace baton::train
