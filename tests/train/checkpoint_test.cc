// Snapshots (train/snapshot.h) and where they live (train/checkpoint_store.h): a snapshot reads
// back exactly, a damaged one never does, and a process killed while writing — to memory or to
// disk — never leaves a torn snapshot behind: what is read afterwards is one that was written
// whole.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "train/checkpoint_store.h"
#include "train/snapshot.h"

namespace baton::train {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/baton-ckpt-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string path;
};

SnapshotMeta Meta(int64_t branch, int64_t step, size_t elements) {
  SnapshotMeta m;
  m.lineage = 0x1234;
  m.key = {branch, step};
  m.dtype = comm::DataType::kFloat32;
  m.elements = elements;
  m.cursors[7] = {120, -1};
  m.cursors[9] = {500, step};
  m.ledger[0] = {1000, 0xdeadbeefcafef00dULL};
  m.ledger[1] = {20, 42};
  return m;
}

// A snapshot whose every parameter is `value` (so a mixed-up read shows), Adam-like: two buffers
// of optimizer state.
std::string Encoded(int64_t branch, int64_t step, size_t elements, float value,
                    uint64_t lineage = 0x1234) {
  std::vector<float> params(elements, value), m(elements, value + 1), v(elements, value + 2);
  SnapshotMeta meta = Meta(branch, step, elements);
  meta.lineage = lineage;
  std::string out;
  EncodeSnapshot(meta, params.data(), {m.data(), v.data()}, &out);
  return out;
}

// Every element of every buffer of `bytes` holds the values Encoded wrote for its step.
void ExpectWhole(const std::string& bytes, size_t elements) {
  std::vector<float> params(elements), m(elements), v(elements);
  auto meta = DecodeSnapshot(bytes, comm::DataType::kFloat32, elements, params.data(),
                             {m.data(), v.data()});
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  const auto value = static_cast<float>(meta->key.step);
  for (size_t i = 0; i < elements; ++i) {
    ASSERT_EQ(params[i], value) << i;
    ASSERT_EQ(m[i], value + 1) << i;
    ASSERT_EQ(v[i], value + 2) << i;
  }
}

TEST(Snapshot, RoundTripsBuffersCursorsAndLedger) {
  const std::string bytes = Encoded(3, 150, 1000, 150);
  ExpectWhole(bytes, 1000);
  auto meta = DecodeSnapshotMeta(bytes);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  const SnapshotMeta expected = Meta(3, 150, 1000);
  EXPECT_EQ(meta->lineage, expected.lineage);
  EXPECT_EQ(meta->key, expected.key);
  EXPECT_EQ(meta->cursors, expected.cursors);
  EXPECT_EQ(meta->ledger, expected.ledger);
}

// A job kind's variable-size part (G-Meta's embedding table) rides between the buffers and the
// cursors: it comes back byte for byte, the rest is unchanged, and a cut in it is caught.
TEST(Snapshot, RoundTripsTheExtraPart) {
  std::vector<float> params(300, 5), m(300, 6), v(300, 7);
  std::string extra(10007, '\0');
  for (size_t i = 0; i < extra.size(); ++i) extra[i] = static_cast<char>(i * 31 + 7);
  std::string bytes;
  EncodeSnapshot(Meta(1, 5, 300), params.data(), {m.data(), v.data()}, &bytes, extra);
  std::string back = "stale";
  auto meta = DecodeSnapshot(bytes, comm::DataType::kFloat32, 300, params.data(),
                             {m.data(), v.data()}, &back);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(back, extra);
  EXPECT_EQ(meta->cursors.at(9).applied, 500);
  EXPECT_EQ(meta->ledger.at(0).records, 1000u);
  ExpectWhole(Encoded(1, 5, 300, 5), 300);  // none: decodes as before
  std::string none = "stale";
  ASSERT_TRUE(DecodeSnapshot(Encoded(1, 5, 300, 5), comm::DataType::kFloat32, 300, params.data(),
                             {m.data(), v.data()}, &none)
                  .ok());
  EXPECT_EQ(none, "");
  bytes[bytes.size() - 200] ^= 1;  // inside the ledger/cursors after the extra part
  EXPECT_FALSE(DecodeSnapshotMeta(bytes).ok());
}

// A snapshot written by an earlier baton (format 1: an 88-byte header without the extra part's
// size) still decodes, so a job checkpointed before an upgrade resumes after it.
TEST(Snapshot, FormatOneSnapshotsOfEarlierVersionsStillDecode) {
  const std::string v2 = Encoded(2, 40, 500, 40);
  // Format 2's header is format 1's 88 bytes (through the checksum) and extra_bytes.
  std::string v1 = v2.substr(0, 80) + std::string(8, '\0') + v2.substr(96);
  const uint32_t one = 1;
  std::memcpy(v1.data() + 8, &one, sizeof(one));
  const uint64_t sum = XXH3_64bits(v1.data(), v1.size());  // header (checksum 0) and payload
  std::memcpy(v1.data() + 80, &sum, sizeof(sum));
  ExpectWhole(v1, 500);
  auto meta = DecodeSnapshotMeta(v1);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->key.step, 40);
  EXPECT_EQ(meta->cursors.at(7).applied, 120);
  v1[200] ^= 1;
  EXPECT_FALSE(DecodeSnapshotMeta(v1).ok());
}

TEST(Snapshot, KeysRankByBranchThenStepAndPackInOrder) {
  const SnapshotKey old_branch_far{2, 900}, new_branch_near{3, 100};
  EXPECT_LT(old_branch_far, new_branch_near);
  EXPECT_LT(old_branch_far.Packed(), new_branch_near.Packed());
  EXPECT_EQ(SnapshotKey::Unpack(new_branch_near.Packed()), new_branch_near);
}

TEST(Snapshot, ATruncatedOrFlippedSnapshotIsRefusedAndAnotherModelsIsNamed) {
  const std::string bytes = Encoded(1, 50, 256, 50);
  for (size_t cut :
       {size_t{0}, size_t{10}, size_t{87}, size_t{88}, bytes.size() / 2, bytes.size() - 1}) {
    auto meta = DecodeSnapshotMeta(std::string_view(bytes).substr(0, cut));
    ASSERT_FALSE(meta.ok()) << "cut at " << cut;
    EXPECT_EQ(meta.status().code(), StatusCode::kIoError);
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    std::string flipped = bytes;
    const size_t at = rng() % flipped.size();
    flipped[at] = static_cast<char>(flipped[at] ^ (1 << (rng() % 8)));
    EXPECT_FALSE(DecodeSnapshotMeta(flipped).ok()) << "bit flipped at byte " << at;
  }
  std::vector<float> params(255), m(255), v(255);
  auto other =
      DecodeSnapshot(bytes, comm::DataType::kFloat32, 255, params.data(), {m.data(), v.data()});
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(other.status().message().find("256"), std::string::npos) << other.status().message();
}

TEST(MemorySnapshots, WritesAlternateAndTheBetterSlotSurvivesTheOtherBeingTorn) {
  TempDir dir;
  MemorySnapshots memory(dir.path + "/slots");
  EXPECT_FALSE(memory.ReadBest(0x1234).has_value());
  ASSERT_TRUE(memory.Write(Encoded(1, 50, 64, 50), {1, 50}, 0x1234).ok());
  ASSERT_TRUE(memory.Write(Encoded(1, 100, 64, 100), {1, 100}, 0x1234).ok());
  ASSERT_TRUE(
      memory.Write(Encoded(1, 150, 64, 150), {1, 150}, 0x1234).ok());  // over step 50's slot
  auto best = memory.ReadBest(0x1234);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->meta.key, (SnapshotKey{1, 150}));
  EXPECT_FALSE(memory.ReadBest(0x9999).has_value()) << "another job's lineage";
  // Tear the best slot: the other one (step 100) is what a restore gets.
  for (int slot = 0; slot < 2; ++slot) {
    const std::string path = dir.path + "/slots." + std::to_string(slot);
    auto meta = DecodeSnapshotMeta(
        std::string(std::istreambuf_iterator<char>(*std::make_unique<std::ifstream>(path)), {}));
    if (meta.ok() && meta->key.step == 150) fs::resize_file(path, fs::file_size(path) - 5);
  }
  best = memory.ReadBest(0x1234);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->meta.key, (SnapshotKey{1, 100}));
  memory.Remove();
  EXPECT_FALSE(fs::exists(dir.path + "/slots.0"));
}

TEST(DiskSnapshots, AStaleWriterCannotHideANewerSnapshotAndAnotherJobsFilesAreLeftAlone) {
  TempDir dir;
  {
    DiskSnapshots other_job(dir.path);
    ASSERT_TRUE(other_job.PersistNow(Encoded(7, 700, 64, 700, 0x9999), 0x9999, {7, 700}).ok());
  }
  {
    DiskSnapshots current(dir.path);
    ASSERT_TRUE(current.PersistNow(Encoded(2, 100, 64, 100), 0x1234, {2, 100}).ok());
    EXPECT_EQ(current.durable_key(), (SnapshotKey{2, 100}));
  }
  {
    // An earlier rank 0, stopped mid-persist and resumed after the job went on without it.
    DiskSnapshots stale(dir.path);
    ASSERT_TRUE(stale.PersistNow(Encoded(1, 150, 64, 150), 0x1234, {1, 150}).ok());
  }
  DiskSnapshots reader(dir.path);
  auto best = reader.Read(0x1234);
  ASSERT_TRUE(best.ok()) << best.status().ToString();
  ASSERT_TRUE(best->has_value());
  EXPECT_EQ((*best)->meta.key, (SnapshotKey{2, 100}));
  ExpectWhole((*best)->bytes, 64);
  auto unknown = reader.Read(0x5555);
  ASSERT_TRUE(unknown.ok());
  EXPECT_FALSE(unknown->has_value());
  // A newer persist deletes this job's older files, and only those.
  ASSERT_TRUE(reader.PersistNow(Encoded(2, 200, 64, 200), 0x1234, {2, 200}).ok());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir.path)) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"snapshot-0000000000001234-0000000002-000000000200",
                                             "snapshot-0000000000009999-0000000007-000000000700"}));
  auto other = reader.Read(0x9999);
  ASSERT_TRUE(other.ok() && other->has_value());
  EXPECT_EQ((*other)->meta.key, (SnapshotKey{7, 700}));
}

TEST(MemorySnapshots, ASlotOfAnotherLineageIsOverwrittenFirst) {
  TempDir dir;
  MemorySnapshots old_job(dir.path + "/slots");
  ASSERT_TRUE(old_job.Write(Encoded(9, 900, 64, 900, 0x7777), {9, 900}, 0x7777).ok());
  MemorySnapshots memory(dir.path + "/slots");
  ASSERT_TRUE(memory.Write(Encoded(1, 50, 64, 50), {1, 50}, 0x1234).ok());
  ASSERT_TRUE(memory.Write(Encoded(1, 100, 64, 100), {1, 100}, 0x1234).ok());
  // Both slots are this job's now: the first write took the free slot, the second the old job's.
  auto best = memory.ReadBest(0x1234);
  ASSERT_TRUE(best.has_value());
  EXPECT_EQ(best->meta.key, (SnapshotKey{1, 100}));
  EXPECT_FALSE(memory.ReadBest(0x7777).has_value());
}

// A child writes snapshots of growing steps to memory and disk as fast as it can; the parent
// SIGKILLs it at random moments (fixed seed). After every kill the disk holds a whole snapshot and
// so does memory, never older than what was there at the previous kill.
TEST(CheckpointStore, KillingTheWriterMidWriteNeverLeavesATornSnapshot) {
  TempDir dir;
  constexpr size_t kElements = 1 << 18;  // 3 MiB a snapshot: writes take milliseconds
  std::mt19937 rng(20261207);
  int64_t last_disk = -1, last_memory = -1, torn_tmp = 0;
  int64_t start = 1;
  for (int round = 0; round < 12; ++round) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      DiskSnapshots disk(dir.path + "/disk");
      MemorySnapshots memory(dir.path + "/mem");
      for (int64_t step = start;; ++step) {
        const std::string bytes = Encoded(1, step, kElements, static_cast<float>(step));
        (void)memory.Write(bytes, {1, step}, 0x1234);
        if (!disk.PersistNow(bytes, 0x1234, {1, step}).ok()) ::_exit(3);
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(60 + rng() % 140));
    ASSERT_EQ(::kill(child, SIGKILL), 0);
    int st = 0;
    ASSERT_EQ(::waitpid(child, &st, 0), child);
    ASSERT_TRUE(WIFSIGNALED(st)) << "the writer stopped on its own: " << st;

    DiskSnapshots disk(dir.path + "/disk");
    auto on_disk = disk.Read(0x1234);
    ASSERT_TRUE(on_disk.ok()) << on_disk.status().ToString();
    if (on_disk->has_value()) {
      ExpectWhole((*on_disk)->bytes, kElements);
      EXPECT_GE((*on_disk)->meta.key.step, last_disk);
      last_disk = (*on_disk)->meta.key.step;
    }
    auto in_memory = MemorySnapshots(dir.path + "/mem").ReadBest(0x1234);
    if (in_memory) {
      ExpectWhole(in_memory->bytes, kElements);
      EXPECT_GE(in_memory->meta.key.step, last_memory);
      last_memory = in_memory->meta.key.step;
    }
    for (const auto& e : fs::directory_iterator(dir.path + "/disk")) {
      if (e.path().filename().string().find(".tmp.") != std::string::npos) {
        ++torn_tmp;  // a write the kill cut short: never renamed into place
        fs::remove(e.path());
      }
    }
    start = std::max(last_disk, last_memory) + 1;
  }
  // The kills did land mid-work: snapshots were written, and some writes were cut short.
  EXPECT_GT(last_disk, 1);
  EXPECT_GT(last_memory, 1);
  std::printf("disk step %lld, memory step %lld, %lld cut-short disk writes\n",
              static_cast<long long>(last_disk), static_cast<long long>(last_memory),
              static_cast<long long>(torn_tmp));
}

}  // namespace
}  // namespace baton::train
