#include "master/dds.h"

#include <gtest/gtest.h>

#include <set>

#include "master/state_store.h"
#include "test_util.h"

namespace baton::master {
namespace {

// A DDS over a real SQLite store in a temporary directory; Restart() plays a master restart.
class DdsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    input_ = testing::WriteLines(dir_.path() + "/input", 100);
    Open();
  }

  void Open(int64_t now = 1000) {
    dds_.reset();
    store_.reset();
    auto store = OpenSqliteStateStore(dir_.path() + "/state.db");
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    LineFileSplitter splitter({input_}, 10, false);
    auto dds = Dds::Open(store_.get(), options_, JobMeta{"job", "fp", {input_}}, &splitter,
                         ShardLayout{}, now);
    ASSERT_TRUE(dds.ok()) << dds.status().ToString();
    dds_ = std::move(*dds);
  }

  Shard MustLease(const std::string& worker, int64_t now = 1000) {
    LeaseOutcome out = dds_->Lease(worker, now);
    EXPECT_EQ(out.kind, LeaseOutcome::kLeased);
    EXPECT_TRUE(store_->WaitDurable(out.seq).ok());
    return out.shard;
  }

  testing::TempDir dir_;
  std::string input_;
  DdsOptions options_{.lease_ms = 1000, .max_shard_retries = 2, .max_error_bytes = 16};
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Dds> dds_;
};

TEST_F(DdsTest, LeasesShardsInOrderWithIncreasingTokens) {
  Shard a = MustLease("n/0");
  Shard b = MustLease("n/1");
  EXPECT_EQ(a.id, 0u);
  EXPECT_EQ(b.id, 1u);
  EXPECT_LT(a.token, b.token);
  EXPECT_EQ(dds_->Counts().doing, 2u);
  EXPECT_EQ(dds_->Counts().todo, 8u);
}

TEST_F(DdsTest, CommitWithStaleTokenIsRejected) {
  Shard a = MustLease("n/0");
  ASSERT_EQ(dds_->ExpireLeases(a.deadline_ms) > 0, true);
  Shard again = MustLease("n/1");
  ASSERT_EQ(again.id, a.id);  // the lost shard goes to the front of the queue
  auto stale = dds_->Commit(a.id, a.token, "n/0");
  ASSERT_FALSE(stale.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kFenced);
  EXPECT_TRUE(dds_->Commit(again.id, again.token, "n/1").ok());
  EXPECT_EQ(dds_->Counts().commits_fenced, 1u);
}

TEST_F(DdsTest, RenewWithStaleTokenIsRejectedAndRenewExtendsTheDeadline) {
  Shard a = MustLease("n/0", 1000);
  auto renewed = dds_->Renew(a.id, a.token, "n/0", 1900);
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(*renewed, 2900);
  std::vector<LostLease> expired;
  dds_->ExpireLeases(2000, &expired);
  EXPECT_TRUE(expired.empty());
  EXPECT_EQ(dds_->Renew(a.id, a.token + 1, "n/0", 2000).status().code(), StatusCode::kFenced);
}

TEST_F(DdsTest, RetriedCommitOfTheSameTokenSucceedsOnce) {
  Shard a = MustLease("n/0");
  auto first = dds_->Commit(a.id, a.token, "n/0");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->already_committed);
  auto second = dds_->Commit(a.id, a.token, "n/0");
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->already_committed);
  EXPECT_EQ(dds_->Counts().done, 1u);
}

TEST_F(DdsTest, ShardPastItsRetryBudgetIsDeadLetteredWithItsCappedReason) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    Shard s = MustLease("n/0");
    ASSERT_EQ(s.id, 0u);
    auto failed = dds_->Fail(s.id, s.token, "n/0", "boom: a very long reason that is truncated");
    ASSERT_TRUE(failed.ok());
    EXPECT_EQ(failed->dead_lettered, attempt == 2);
  }
  auto dead = dds_->DeadLetters(10);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].attempts, 3);
  EXPECT_EQ(dead[0].last_error, "boom: a very lon");  // max_error_bytes = 16
  EXPECT_EQ(dds_->Counts().dead, 1u);
  EXPECT_EQ(MustLease("n/0").id, 1u);  // a dead shard is never leased again
}

TEST_F(DdsTest, RevokingAWorkerOrANodeRequeuesOnlyItsLeases) {
  Shard a = MustLease("node-a/0");
  Shard b = MustLease("node-a/1");
  Shard c = MustLease("node-b/0");
  std::vector<LostLease> revoked;
  dds_->RevokeWorker("node-a/1", "exited", &revoked);
  ASSERT_EQ(revoked.size(), 1u);
  EXPECT_EQ(revoked[0].shard_id, b.id);
  EXPECT_EQ(revoked[0].token, b.token);  // so its staged output can be deleted
  dds_->RevokeWorkersWithPrefix("node-a/", "node died", &revoked);
  ASSERT_EQ(revoked.size(), 2u);
  EXPECT_EQ(revoked[1].shard_id, a.id);
  EXPECT_TRUE(dds_->Commit(c.id, c.token, "node-b/0").ok());
  EXPECT_FALSE(dds_->Commit(a.id, a.token, "node-a/0").ok());
  EXPECT_FALSE(dds_->Commit(b.id, b.token, "node-a/1").ok());
  EXPECT_EQ(dds_->Counts().requeues, 2u);
}

TEST_F(DdsTest, WaitWhileShardsAreInFlightThenEnd) {
  std::vector<Shard> held;
  for (int i = 0; i < 10; ++i) held.push_back(MustLease("n/0"));
  EXPECT_EQ(dds_->Lease("n/1", 1000).kind, LeaseOutcome::kWait);
  for (const Shard& s : held) ASSERT_TRUE(dds_->Commit(s.id, s.token, "n/0").ok());
  EXPECT_EQ(dds_->Lease("n/1", 1000).kind, LeaseOutcome::kEnd);
  EXPECT_TRUE(dds_->Finished());
  EXPECT_EQ(dds_->Counts().records_done, 100u);
}

TEST_F(DdsTest, RestartKeepsCommittedShardsAndLeasesAndNeverReusesTokens) {
  Shard done = MustLease("n/0");
  auto committed = dds_->Commit(done.id, done.token, "n/0");
  ASSERT_TRUE(committed.ok());
  ASSERT_TRUE(store_->WaitDurable(committed->seq).ok());
  Shard leased = MustLease("n/1");
  Open(/*now=*/50000);  // master restart, long after the lease's original deadline
  DdsCounts c = dds_->Counts();
  EXPECT_EQ(c.done, 1u);
  EXPECT_EQ(c.doing, 1u);
  EXPECT_EQ(c.todo, 8u);
  // The holder can renew and commit after the restart...
  EXPECT_TRUE(dds_->Renew(leased.id, leased.token, "n/1", 50001).ok());
  EXPECT_TRUE(dds_->Commit(leased.id, leased.token, "n/1").ok());
  // ...and new tokens are larger than any issued before.
  Shard next = MustLease("n/2", 50001);
  EXPECT_GT(next.token, leased.token);
}

TEST_F(DdsTest, RestartWithDifferentInputIsRefused) {
  dds_.reset();
  store_.reset();
  auto store = OpenSqliteStateStore(dir_.path() + "/state.db");
  ASSERT_TRUE(store.ok());
  LineFileSplitter splitter({input_}, 10, false);
  auto dds = Dds::Open(store->get(), options_, JobMeta{"job", "other-fp", {input_}}, &splitter,
                       ShardLayout{}, 0);
  ASSERT_FALSE(dds.ok());
  EXPECT_EQ(dds.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(DdsTest, EpochsGetTheirOwnShardsAndShuffleIsSeeded) {
  auto layout_ids = [&](uint64_t seed) {
    testing::TempDir d;
    auto store = OpenSqliteStateStore(d.path() + "/s.db");
    LineFileSplitter splitter({input_}, 10, false);
    auto dds = Dds::Open(store->get(), options_, JobMeta{"job", "fp", {input_}}, &splitter,
                         ShardLayout{.epochs = 2, .shuffle = true, .seed = seed}, 0);
    std::vector<uint64_t> begins;
    while (true) {
      LeaseOutcome o = (*dds)->Lease("w/0", 0);
      if (o.kind != LeaseOutcome::kLeased) break;
      begins.push_back(o.shard.range.byte_begin * 10 + o.shard.epoch);
    }
    (void)(*store)->WaitDurable(0);
    return begins;
  };
  auto a = layout_ids(7), b = layout_ids(7), c = layout_ids(8);
  EXPECT_EQ(a.size(), 20u);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

}  // namespace
}  // namespace baton::master

namespace baton::master {
namespace {

TEST_F(DdsTest, ReleasingRecoveredLeasesRequeuesThemWithoutChargingTheirBudget) {
  Shard a = MustLease("old/0");
  Shard b = MustLease("old/1");
  Open(/*now=*/2000);  // a fresh run: nobody holds these leases any more
  int released = 0;
  ASSERT_TRUE(store_->WaitDurable(dds_->ReleaseAllLeases(&released)).ok());
  EXPECT_EQ(released, 2);
  EXPECT_EQ(dds_->Counts().doing, 0u);
  EXPECT_EQ(dds_->Commit(a.id, a.token, "old/0").status().code(), StatusCode::kFenced);
  Shard again = MustLease("new/0", 2000);
  EXPECT_EQ(again.id, a.id);  // back at the front of the queue
  EXPECT_EQ(again.attempts, 1);
  EXPECT_GT(again.token, b.token);
  Open(/*now=*/3000);  // and the release itself was durable
  EXPECT_EQ(dds_->Counts().doing, 1u);
  EXPECT_EQ(dds_->Counts().todo, 9u);
}

TEST_F(DdsTest, OnlyTheHolderCanRenewCommitOrFailItsLease) {
  Shard a = MustLease("node-a/0");
  // Another worker that learned (or guessed) the token is refused, with the same answer as for a
  // stale token, so that probing reveals nothing.
  auto renew = dds_->Renew(a.id, a.token, "rogue/9", 1100);
  EXPECT_EQ(renew.status().code(), StatusCode::kFenced);
  auto stale = dds_->Renew(a.id, a.token + 1, "node-a/0", 1100);
  EXPECT_EQ(stale.status().message(),
            "renewal of shard 0 refused: worker node-a/0 holds no lease of it with that token");
  EXPECT_EQ(dds_->Commit(a.id, a.token, "rogue/9").status().code(), StatusCode::kFenced);
  EXPECT_EQ(dds_->Fail(a.id, a.token, "rogue/9", "x").status().code(), StatusCode::kFenced);
  EXPECT_EQ(dds_->Counts().done, 0u);
  EXPECT_EQ(dds_->Counts().todo, 9u);  // the rogue's fail did not re-queue it either
  EXPECT_TRUE(dds_->Commit(a.id, a.token, "node-a/0").ok());
}

TEST_F(DdsTest, TokensGrowButTheirLowHalfIsRandom) {
  std::set<uint64_t> low;
  uint64_t last = 0;
  for (int i = 0; i < 10; ++i) {
    Shard s = MustLease("n/" + std::to_string(i));
    EXPECT_GT(s.token, last);
    EXPECT_EQ(s.token >> 32, static_cast<uint64_t>(i + 1));  // the lease count
    last = s.token;
    low.insert(s.token & 0xFFFFFFFFu);
  }
  // Ten sequential tokens would differ by one; random low halves collide with odds ~1e-8.
  EXPECT_EQ(low.size(), 10u);
  EXPECT_FALSE(low.count(1) && low.count(2) && low.count(3));
}

TEST_F(DdsTest, RetryingDeadLettersGivesThemAFreshBudgetDurably) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    Shard s = MustLease("n/0");
    ASSERT_TRUE(dds_->Fail(s.id, s.token, "n/0", "disk full").ok());
  }
  ASSERT_EQ(dds_->Counts().dead, 1u);
  int retried = 0;
  ASSERT_TRUE(store_->WaitDurable(dds_->RetryDeadLetters(&retried)).ok());
  EXPECT_EQ(retried, 1);
  EXPECT_EQ(dds_->Counts().dead, 0u);
  EXPECT_TRUE(dds_->DeadLetters(10).empty());
  Open(/*now=*/2000);
  EXPECT_EQ(dds_->Counts().dead, 0u);
  Shard again = MustLease("n/1", 2000);
  EXPECT_EQ(again.id, 0u);  // first in the queue
  EXPECT_EQ(again.attempts, 1);
}

TEST_F(DdsTest, EventCountersRoundTripThroughTheirEncoding) {
  Shard a = MustLease("n/0");
  dds_->ExpireLeases(a.deadline_ms);
  DdsCounts before = dds_->Counts();
  std::string encoded = Dds::EncodeEventCounters(before);
  Open(/*now=*/5000);
  EXPECT_EQ(dds_->Counts().leases_granted, 0u);
  dds_->RestoreEventCounters(encoded);
  DdsCounts after = dds_->Counts();
  EXPECT_EQ(after.leases_granted, 1u);
  EXPECT_EQ(after.leases_expired, 1u);
  EXPECT_EQ(after.requeues, 1u);
  dds_->RestoreEventCounters("garbage");  // an unknown format changes nothing
  EXPECT_EQ(dds_->Counts().leases_granted, 1u);
}

}  // namespace
}  // namespace baton::master
