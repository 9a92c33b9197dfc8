// The rendezvous state machine (master/rendezvous.h), the bootstrap KV (kv_store.h) and their
// durable host (rendezvous_host.h) over a real SQLite state store.
#include "master/rendezvous.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "master/kv_store.h"
#include "master/rendezvous_host.h"
#include "master/state_store.h"
#include "test_util.h"

namespace baton::master {
namespace {

RendezvousMember M(int node, int local) {
  return {.worker_id = "n" + std::to_string(node) + "/" + std::to_string(local),
          .node_rank = node,
          .local_rank = local};
}

std::vector<RendezvousMember> Plan(int nodes, int per_node) {
  std::vector<RendezvousMember> p;
  for (int n = 0; n < nodes; ++n) {
    for (int l = 0; l < per_node; ++l) p.push_back(M(n, l));
  }
  return p;
}

std::vector<std::string> Ids(const GenerationInfo& g) {
  std::vector<std::string> ids;
  for (const auto& m : g.members) ids.push_back(m.worker_id);
  return ids;
}

TEST(Rendezvous, FormsWhenEveryPlannedWorkerJoinedWithRanksByNodeThenLocalRank) {
  Rendezvous r({.timeout_ms = 60000, .min_workers = 1});
  r.SetPlanned(Plan(2, 2), true, 0);
  // Join order is scrambled; ranks must not depend on it.
  EXPECT_FALSE(r.Join(M(1, 1), 0, false, 1).formed);
  EXPECT_FALSE(r.Join(M(0, 1), 0, false, 2).formed);
  EXPECT_FALSE(r.Join(M(1, 0), 0, false, 3).formed);
  JoinState s = r.Join(M(0, 0), 0, false, 4);
  ASSERT_TRUE(s.formed);
  EXPECT_EQ(s.rank, 0);
  EXPECT_EQ(s.generation.id, 1);
  EXPECT_EQ(Ids(s.generation), (std::vector<std::string>{"n0/0", "n0/1", "n1/0", "n1/1"}));
  EXPECT_EQ(s.generation.Nodes(), 2);
  EXPECT_EQ(s.generation.MaxLocal(), 2);
  // A member still polling (it joined before the generation formed) learns its rank.
  EXPECT_EQ(r.Join(M(1, 1), 0, true, 5).rank, 3);
  EXPECT_EQ(r.generation().id, 1);
  EXPECT_TRUE(r.generation().active);
  // A member whose collective failed joins again: the generation ends for everyone.
  EXPECT_FALSE(r.Join(M(1, 1), 1, false, 6).formed);
  EXPECT_FALSE(r.generation().active);
  EXPECT_NE(r.generation().end_reason.find("n1/1 left it"), std::string::npos);
  // Its retried first call arrives as a poll naming the generation it wanted out of: it is not
  // handed that generation again.
  for (const auto& m : {M(0, 0), M(0, 1), M(1, 0)}) r.Join(m, 1, false, 7);  // n1/1 waits already
  ASSERT_TRUE(r.generation().active);
  ASSERT_EQ(r.generation().id, 2);
  EXPECT_FALSE(r.Join(M(0, 0), 2, true, 8).formed);
  EXPECT_FALSE(r.generation().active);
}

TEST(Rendezvous, APartialPlanFormsOnlyAfterTheTimeoutWithMinWorkers) {
  Rendezvous r({.timeout_ms = 1000, .min_workers = 2});
  r.SetPlanned(Plan(1, 2), /*complete=*/false, 0);  // a second node has not registered yet
  EXPECT_FALSE(r.Join(M(0, 0), 0, false, 0).formed);
  EXPECT_FALSE(r.Join(M(0, 1), 0, false, 10).formed);  // all planned, but the plan is partial
  r.Tick(999);
  EXPECT_FALSE(r.generation().active);
  r.Tick(1000);
  ASSERT_TRUE(r.generation().active);
  EXPECT_EQ(r.generation().members.size(), 2u);
}

TEST(Rendezvous, TimeoutDoesNotFormBelowMinWorkers) {
  Rendezvous r({.timeout_ms = 100, .min_workers = 3});
  r.SetPlanned(Plan(1, 4), true, 0);
  r.Join(M(0, 0), 0, false, 0);
  r.Join(M(0, 1), 0, false, 0);
  r.Tick(100000);
  EXPECT_FALSE(r.generation().active);
  EXPECT_TRUE(r.Join(M(0, 2), 0, false, 100001).formed);  // three: the timeout has long passed
  EXPECT_EQ(r.generation().members.size(), 3u);
}

TEST(Rendezvous, ADeadMemberEndsTheGenerationAndSurvivorsReformWithoutWaiting) {
  Rendezvous r({.timeout_ms = 3600000, .min_workers = 1});
  r.SetPlanned(Plan(2, 2), true, 0);
  for (const auto& m : Plan(2, 2)) r.Join(m, 0, false, 0);
  ASSERT_EQ(r.generation().id, 1);
  // Node 1 dies: its workers leave and it plans none.
  r.Leave("n1/0", "node n1 died", 5);
  r.Leave("n1/1", "node n1 died", 5);
  EXPECT_FALSE(r.generation().active);
  EXPECT_EQ(r.generation().end_reason, "node n1 died");
  r.SetPlanned(Plan(1, 2), true, 6);
  EXPECT_FALSE(r.Join(M(0, 1), 1, false, 7).formed);
  JoinState s = r.Join(M(0, 0), 1, false, 8);  // no timeout involved: both planned workers are here
  ASSERT_TRUE(s.formed);
  EXPECT_EQ(s.generation.id, 2);
  EXPECT_EQ(Ids(s.generation), (std::vector<std::string>{"n0/0", "n0/1"}));
}

TEST(Rendezvous, AMemberThatRestartedOrANewWorkerEndsTheGeneration) {
  Rendezvous r({.timeout_ms = 3600000, .min_workers = 1});
  r.SetPlanned(Plan(1, 2), true, 0);
  r.Join(M(0, 0), 0, false, 0);
  r.Join(M(0, 1), 0, false, 0);
  ASSERT_TRUE(r.generation().active);
  // n0/1 restarted (its process lost the generation): it joins knowing none.
  EXPECT_FALSE(r.Join(M(0, 1), 0, false, 1).formed);
  EXPECT_FALSE(r.generation().active);
  EXPECT_NE(r.generation().end_reason.find("restarted"), std::string::npos);
  EXPECT_TRUE(r.Join(M(0, 0), 1, false, 2).formed);
  EXPECT_EQ(r.generation().id, 2);
  // Scale up: a third worker joins the running generation.
  r.SetPlanned(Plan(1, 3), true, 3);
  EXPECT_FALSE(r.Join(M(0, 2), 0, false, 4).formed);
  EXPECT_FALSE(r.generation().active);
  r.Join(M(0, 0), 2, false, 5);
  EXPECT_TRUE(r.Join(M(0, 1), 2, false, 6).formed);
  EXPECT_EQ(r.generation().id, 3);
  EXPECT_EQ(r.generation().members.size(), 3u);
}

TEST(Rendezvous, SerializedGenerationRestoresActiveWithItsMembers) {
  Rendezvous r({.timeout_ms = 100, .min_workers = 1});
  r.SetPlanned(Plan(2, 1), true, 0);
  r.Join(M(1, 0), 0, false, 0);
  r.Join(M(0, 0), 0, false, 0);
  ASSERT_TRUE(r.TakeDirty());
  EXPECT_FALSE(r.TakeDirty());
  Rendezvous back({});
  ASSERT_TRUE(back.Restore(r.Serialize()).ok());
  EXPECT_EQ(back.generation().id, 1);
  EXPECT_TRUE(back.generation().active);
  EXPECT_EQ(back.generation().members, r.generation().members);
  // A member of the restored generation keeps training: its poll is answered as before.
  EXPECT_EQ(back.Join(M(1, 0), 0, true, 0).rank, 1);
  EXPECT_FALSE(back.Restore("garbage").ok());
  EXPECT_FALSE(back.Restore("3 1\nn0/0 zero 0\n").ok());
}

// Random joins, leaves, plan changes and ticks against the invariants: ids grow by one per
// formation, members are unique and in (node, local) order, a member's poll reports its rank, and
// a generation formed before its timeout holds every planned worker.
TEST(Rendezvous, RandomizedMembershipKeepsItsInvariants) {
  std::mt19937 rng(20261207);
  Rendezvous r({.timeout_ms = 50, .min_workers = 2});
  std::map<std::string, int64_t> known;  // each worker's last formed generation
  std::map<std::string, bool> waiting;   // joined, not yet formed
  int64_t now = 0, last_id = 0;
  int nodes = 2, per_node = 2;
  for (int step = 0; step < 20000; ++step) {
    now += static_cast<int64_t>(rng() % 7);
    const int op = static_cast<int>(rng() % 10);
    const RendezvousMember w = M(static_cast<int>(rng() % 3), static_cast<int>(rng() % 3));
    if (op < 6) {
      JoinState s = r.Join(w, known[w.worker_id], waiting[w.worker_id], now);
      waiting[w.worker_id] = !s.formed;
      if (s.formed) {
        EXPECT_EQ(s.generation.members[s.rank].worker_id, w.worker_id);
        known[w.worker_id] = s.generation.id;
      }
    } else if (op < 8) {
      r.Leave(w.worker_id, "left", now);
      known[w.worker_id] = 0;  // a process that left comes back as a new one
      waiting[w.worker_id] = false;
    } else if (op == 8) {
      nodes = 1 + static_cast<int>(rng() % 3);
      per_node = 1 + static_cast<int>(rng() % 3);
      r.SetPlanned(Plan(nodes, per_node), rng() % 4 != 0, now);
    } else {
      r.Tick(now);
    }
    const GenerationInfo& g = r.generation();
    ASSERT_TRUE(g.id == last_id || g.id == last_id + 1) << "step " << step;
    last_id = g.id;
    if (g.active) {
      std::set<std::string> unique;
      for (size_t i = 0; i < g.members.size(); ++i) {
        unique.insert(g.members[i].worker_id);
        if (i > 0) {
          const auto& a = g.members[i - 1];
          const auto& b = g.members[i];
          ASSERT_TRUE(std::tie(a.node_rank, a.local_rank) < std::tie(b.node_rank, b.local_rank));
        }
      }
      ASSERT_EQ(unique.size(), g.members.size());
      ASSERT_GE(g.members.size(), 1u);
    }
  }
  EXPECT_GT(last_id, 100);  // the walk did form and end many generations
}

TEST(KvStore, BoundsKeysValuesAndScopesAndAddsDecimalIntegers) {
  KvStore kv(
      {.max_key_bytes = 8, .max_value_bytes = 16, .max_scope_keys = 3, .max_scope_bytes = 30});
  EXPECT_TRUE(kv.Set(1, "a", "x").ok());
  EXPECT_EQ(kv.Get(1, "a"), "x");
  EXPECT_FALSE(kv.Get(2, "a").has_value());
  EXPECT_EQ(kv.Set(1, "", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.Set(1, "123456789", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(kv.Set(1, "b", std::string(17, 'v')).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(kv.Set(1, "b", std::string(16, 'v')).ok());
  EXPECT_EQ(kv.Set(1, "c", std::string(16, 'v')).code(), StatusCode::kFailedPrecondition);  // bytes
  EXPECT_TRUE(kv.Set(1, "c", "v").ok());
  EXPECT_EQ(kv.Set(1, "d", "v").code(), StatusCode::kFailedPrecondition);  // keys
  EXPECT_TRUE(kv.Set(1, "a", "replaced").ok());                            // replacing is fine
  EXPECT_EQ(*kv.Add(2, "n", 5), 5);
  EXPECT_EQ(*kv.Add(2, "n", -7), -2);
  EXPECT_EQ(kv.Add(1, "a", 1).status().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(kv.Set(kJobScope, "lineage", "x").ok());
  kv.DropBelow(2);
  EXPECT_EQ(kv.keys(1), 0u);
  EXPECT_EQ(kv.keys(2), 1u);
  EXPECT_EQ(kv.keys(kJobScope), 1u) << "the job scope is never dropped";
  // Binary keys and values are bytes, not text.
  const std::string bin("\x00\xff\x80", 3);
  EXPECT_TRUE(kv.Set(3, bin, bin).ok());
  EXPECT_EQ(kv.Get(3, bin), bin);

  KvStore wide;
  ASSERT_TRUE(wide.Set(1, "big", std::to_string(INT64_MAX)).ok());
  EXPECT_EQ(wide.Add(1, "big", 1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(*wide.Add(1, "big", -1), INT64_MAX - 1);
}

TEST(RendezvousHost, GenerationAndItsKvSurviveARestartAndStaleScopesAreDroppedButTheJobScope) {
  testing::TempDir dir;
  const std::string db = dir.path() + "/state.db";
  const RendezvousOptions options{.timeout_ms = 1000, .min_workers = 1};
  const std::string binary("addr\0\x01\xfe", 7);
  {
    auto store = OpenSqliteStateStore(db);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    RendezvousHost host(options, **store);
    host.SetPlanned({M(0, 0)}, true, 0);
    v1::JoinRequest join;
    join.set_worker_id("n0/0");
    v1::JoinReply reply;
    uint64_t seq = 0;
    ASSERT_TRUE(host.Join(join, 0, 0, 1, &reply, &seq).ok());
    ASSERT_TRUE(reply.formed());
    v1::KvSetRequest set;
    set.set_generation(1);
    set.set_key("gen1-key");
    set.set_value(binary);
    ASSERT_TRUE(host.KvSet(set, &seq).ok());
    set.set_generation(kJobScope);  // the job's own: kept across generations
    set.set_key("job-key");
    ASSERT_TRUE(host.KvSet(set, &seq).ok());
    // The member restarts: generation 2 forms and generation 1's keys must go.
    ASSERT_TRUE(host.Join(join, 0, 0, 2, &reply, &seq).ok());
    ASSERT_TRUE(reply.formed());
    ASSERT_EQ(reply.generation().id(), 2);
    set.set_generation(2);
    set.set_key("gen2-key");
    ASSERT_TRUE(host.KvSet(set, &seq).ok());
    // Writes to an ended generation are refused with the reason.
    set.set_generation(1);
    Status stale = host.KvSet(set, &seq);
    EXPECT_EQ(stale.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(stale.message().find("generation 2 is active"), std::string::npos) << stale.message();
    ASSERT_TRUE((*store)->WaitDurable(seq).ok());
  }
  auto store = OpenSqliteStateStore(db);
  ASSERT_TRUE(store.ok());
  auto values = (*store)->LoadMetaValues();
  ASSERT_TRUE(values.ok());
  RendezvousHost host(options, **store);
  ASSERT_TRUE(host.Restore(*values).ok());
  EXPECT_EQ(host.generation_id(), 2);
  v1::KvGetRequest get;
  get.set_generation(2);
  get.add_keys("gen2-key");
  v1::KvGetReply got;
  ASSERT_TRUE(host.KvGet(get, &got).ok());
  ASSERT_TRUE(got.found());
  EXPECT_EQ(got.values(0), binary);
  get.set_generation(1);
  EXPECT_EQ(host.KvGet(get, &got).code(), StatusCode::kFailedPrecondition);
  v1::KvGetRequest job;
  job.set_generation(kJobScope);
  job.add_keys("job-key");
  ASSERT_TRUE(host.KvGet(job, &got).ok());
  ASSERT_TRUE(got.found()) << "the job scope outlives generations and a restart";
  EXPECT_EQ(got.values(0), binary);
  std::set<int64_t> scopes;
  ASSERT_TRUE((*store)
                  ->LoadKv([&](int64_t scope, std::string, std::string) { scopes.insert(scope); })
                  .ok());
  EXPECT_EQ(scopes, (std::set<int64_t>{kJobScope, 2}));
}

TEST(RendezvousHost, RefusesAGenerationNobodyCouldKnowAndOversizedRequests) {
  testing::TempDir dir;
  auto store = OpenSqliteStateStore(dir.path() + "/state.db");
  ASSERT_TRUE(store.ok());
  RendezvousHost host({}, **store);
  v1::JoinRequest join;
  join.set_worker_id("n0/0");
  join.set_known_generation(7);
  v1::JoinReply reply;
  uint64_t seq = 0;
  EXPECT_EQ(host.Join(join, 0, 0, 0, &reply, &seq).code(), StatusCode::kInvalidArgument);
  join.set_known_generation(-1);
  EXPECT_EQ(host.Join(join, 0, 0, 0, &reply, &seq).code(), StatusCode::kInvalidArgument);
  v1::KvGetRequest get;  // no keys
  v1::KvGetReply got;
  EXPECT_EQ(host.KvGet(get, &got).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace baton::master
