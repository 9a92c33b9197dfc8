// A randomized run of the DDS state machine against a model, with master restarts on a real
// SQLite store. Fixed seeds: a failure reproduces exactly.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "master/dds.h"
#include "master/state_store.h"
#include "test_util.h"

namespace baton::master {
namespace {

struct Held {
  uint64_t shard;
  uint64_t token;
};

void RunRandomized(uint64_t seed, int steps) {
  testing::TempDir dir;
  std::string input = testing::WriteLines(dir.path() + "/input", 400);
  const DdsOptions options{.lease_ms = 100, .max_shard_retries = 3, .max_error_bytes = 64};
  std::unique_ptr<StateStore> store;
  std::unique_ptr<Dds> dds;
  int64_t now = 0;
  uint64_t requeues = 0;  // counters live in memory: sum them across restarts
  auto open = [&] {
    if (dds) requeues += dds->Counts().requeues;
    dds.reset();
    store.reset();
    store = std::move(OpenSqliteStateStore(dir.path() + "/state.db")).value();
    LineFileSplitter splitter({input}, 4, false);  // 100 shards
    auto d = Dds::Open(store.get(), options, JobMeta{"job", "fp", {input}}, &splitter,
                       ShardLayout{}, now);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    dds = std::move(*d);
  };
  open();
  const uint64_t total = dds->Counts().total;

  std::mt19937_64 rng(seed);
  const std::vector<std::string> workers = {"a/0", "a/1", "b/0", "b/1", "c/0"};
  std::map<std::string, std::vector<Held>> held;  // what each worker believes it holds
  std::map<uint64_t, int> accepted_commits;       // first-time commits per shard
  std::map<uint64_t, uint64_t> attempts_seen;     // leases granted per shard
  std::set<uint64_t> tokens_issued;
  int fails = 0;

  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  auto ack = [&](uint64_t seq) { ASSERT_TRUE(store->WaitDurable(seq).ok()); };

  for (int step = 0; step < steps; ++step) {
    now += static_cast<int64_t>(rng() % 20);
    const std::string& w = workers[pick(workers.size())];
    switch (rng() % 10) {
      case 0:
      case 1:
      case 2: {  // lease
        LeaseOutcome o = dds->Lease(w, now);
        if (o.kind == LeaseOutcome::kLeased) {
          ack(o.seq);
          ASSERT_TRUE(tokens_issued.insert(o.shard.token).second) << "token reused";
          ++attempts_seen[o.shard.id];
          held[w].push_back({o.shard.id, o.shard.token});
        }
        break;
      }
      case 3:
      case 4:
      case 5: {  // commit one held shard (possibly stale)
        if (held[w].empty()) break;
        size_t i = pick(held[w].size());
        Held h = held[w][i];
        held[w].erase(held[w].begin() + static_cast<long>(i));
        auto c = dds->Commit(h.shard, h.token, w);
        if (c.ok()) {
          ack(c->seq);
          if (!c->already_committed) ++accepted_commits[h.shard];
        } else {
          ASSERT_EQ(c.status().code(), StatusCode::kFenced) << c.status().ToString();
        }
        break;
      }
      case 6: {  // renew everything held
        for (const Held& h : held[w]) (void)dds->Renew(h.shard, h.token, w, now);
        break;
      }
      case 7: {  // fail one held shard
        if (held[w].empty()) break;
        Held h = held[w].back();
        held[w].pop_back();
        auto f = dds->Fail(h.shard, h.token, w, "injected failure " + std::to_string(step));
        if (f.ok()) {
          ack(f->seq);
          ++fails;
        }
        break;
      }
      case 8: {  // expiry, worker exit or node death
        uint64_t seq;
        int kind = static_cast<int>(rng() % 3);
        if (kind == 0)
          seq = dds->ExpireLeases(now);
        else if (kind == 1)
          seq = dds->RevokeWorker(w, "worker exited");
        else
          seq = dds->RevokeWorkersWithPrefix(w.substr(0, 2), "node died");
        ack(seq);
        break;
      }
      case 9: {  // master restart (everything acknowledged is durable)
        if (rng() % 4 == 0) open();
        break;
      }
    }
  }
  // Drain: every worker keeps leasing and committing until the job ends.
  held.clear();
  for (int guard = 0; guard < 100000; ++guard) {
    now += 1;
    LeaseOutcome o = dds->Lease("drain/0", now);
    if (o.kind == LeaseOutcome::kEnd) break;
    if (o.kind == LeaseOutcome::kWait) {
      now += options.lease_ms;  // in-flight leases of vanished workers expire
      ack(dds->ExpireLeases(now));
      continue;
    }
    ack(o.seq);
    ++attempts_seen[o.shard.id];
    auto c = dds->Commit(o.shard.id, o.shard.token, "drain/0");
    ASSERT_TRUE(c.ok());
    ack(c->seq);
    ++accepted_commits[o.shard.id];
  }
  open();  // the final state must also be what the store recovers

  DdsCounts counts = dds->Counts();
  EXPECT_EQ(counts.done + counts.dead, total) << "a shard was lost";
  EXPECT_EQ(counts.todo + counts.doing, 0u);
  EXPECT_EQ(accepted_commits.size(), counts.done);
  for (const auto& [shard, n] : accepted_commits) {
    EXPECT_EQ(n, 1) << "shard " << shard << " committed " << n << " times";
    auto s = dds->Get(shard);
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->state, ShardState::kDone);
  }
  for (const auto& d : dds->DeadLetters(total)) {
    EXPECT_EQ(accepted_commits.count(d.shard_id), 0u);
    EXPECT_GT(d.attempts, options.max_shard_retries) << "dead-lettered within its retry budget";
  }
  EXPECT_GT(fails, 0);
  EXPECT_GT(requeues, 0u);
}

TEST(DdsRandomized, EveryShardCommittedExactlyOnceAcrossFailuresAndRestarts_Seed1) {
  RunRandomized(1, 5000);
}
TEST(DdsRandomized, EveryShardCommittedExactlyOnceAcrossFailuresAndRestarts_Seed2) {
  RunRandomized(2, 5000);
}
TEST(DdsRandomized, EveryShardCommittedExactlyOnceAcrossFailuresAndRestarts_Seed3) {
  RunRandomized(3, 5000);
}

}  // namespace
}  // namespace baton::master
