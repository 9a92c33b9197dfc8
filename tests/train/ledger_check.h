// The exactly-once check of training job tests (kind: train, kind: meta): the ledger of the
// newest snapshot a job persisted (train/snapshot.h) against the records of its input, counted
// here.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "common/files.h"
#include "train/snapshot.h"

namespace baton::testing {

// Every one of the first `records` records of `records_path` applied exactly once in each of
// `epochs` epochs, by the newest snapshot under `checkpoint_dir`.
inline void ExpectEveryRecordAppliedOncePerEpoch(const std::string& checkpoint_dir,
                                                 const std::string& records_path, int records,
                                                 int epochs) {
  std::string newest;  // "snapshot-<branch>-<step>", zero-padded: the greatest name is the best
  for (const auto& e : std::filesystem::directory_iterator(checkpoint_dir)) {
    const std::string name = e.path().filename().string();
    if (name.starts_with("snapshot-") && name.find(".tmp.") == std::string::npos) {
      newest = std::max(newest, name);
    }
  }
  ASSERT_FALSE(newest.empty()) << "no snapshot in " << checkpoint_dir;
  auto bytes = ReadFile(checkpoint_dir + "/" + newest);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  auto meta = train::DecodeSnapshotMeta(*bytes);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  train::EpochLedger expected;
  for (int i = 0; i < records; ++i) {
    ++expected.records;
    expected.fingerprint += train::RecordFingerprint(records_path, static_cast<uint64_t>(i));
  }
  ASSERT_EQ(meta->ledger.size(), static_cast<size_t>(epochs));
  for (const auto& [epoch, applied] : meta->ledger) {
    EXPECT_EQ(applied.records, expected.records) << "epoch " << epoch;
    EXPECT_EQ(applied.fingerprint, expected.fingerprint) << "epoch " << epoch;
  }
}

}  // namespace baton::testing
