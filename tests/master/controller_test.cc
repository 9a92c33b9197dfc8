// The controller seam (master/controller.h): policies see the registry's per-worker signals and
// their actions reach the agents' heartbeat replies through the Registry.
#include "master/controller.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "master/registry.h"

namespace baton::master {
namespace {

constexpr size_t kMaxNodes = 16;

// A test policy: restarts every worker slower than half the fastest one and remembers the last
// view it was shown.
class RestartSlowWorkers : public Policy {
 public:
  explicit RestartSlowWorkers(ClusterView* seen) : seen_(seen) {}
  std::string_view name() const override { return "restart-slow-workers"; }
  std::vector<PolicyAction> Evaluate(const ClusterView& view) override {
    *seen_ = view;
    double fastest = 0;
    for (const WorkerSignals& w : view.workers) fastest = std::max(fastest, w.records_per_s);
    std::vector<PolicyAction> out;
    for (const WorkerSignals& w : view.workers) {
      if (w.records_per_s >= fastest / 2) continue;
      PolicyAction a;
      a.node_id = w.node_id;
      a.action.set_kind(v1::Action::KIND_RESTART_WORKER);
      a.action.set_local_rank(std::stoi(w.worker_id.substr(w.worker_id.find('/') + 1)));
      a.action.set_reason(w.worker_id + " is slow");
      out.push_back(a);
    }
    return out;
  }

 private:
  ClusterView* seen_;
};

void Progress(Registry& r, const std::string& worker, uint64_t records, int64_t now_ms) {
  v1::ReportProgressRequest req;
  req.set_node_id(worker.substr(0, worker.find('/')));
  req.set_worker_id(worker);
  req.set_records_total(records);
  req.set_cpu_seconds(1.5);
  req.set_rss_bytes(1 << 20);
  (*req.mutable_counters())["batches"] = records / 10;
  r.RecordProgress(req, now_ms);
}

std::vector<v1::Action> Heartbeat(Registry& r, const std::string& node, int64_t now_ms) {
  v1::HeartbeatRequest req;
  req.set_node_id(node);
  std::vector<v1::Action> actions;
  EXPECT_TRUE(r.Heartbeat(req, now_ms, &actions)) << node;
  return actions;
}

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(registry_.RegisterNode("fast", 100, 0, kMaxNodes).ok());
    ASSERT_TRUE(registry_.RegisterNode("slow", 200, 0, kMaxNodes).ok());
    // fast/0: 1000 records/s, slow/1: 100 records/s, over one second.
    Progress(registry_, "fast/0", 0, 0);
    Progress(registry_, "slow/1", 0, 0);
    Progress(registry_, "fast/0", 1000, 1000);
    Progress(registry_, "slow/1", 100, 1000);
    registry_.RecordCommit("slow/1", 100);
  }

  Registry registry_{/*speed_window_ms=*/10000};
  Controller controller_{registry_};
  ClusterView seen_;
};

TEST_F(ControllerTest, PolicySeesPerWorkerSignalsAndItsActionsReachTheHeartbeatReply) {
  controller_.AddPolicy(std::make_unique<RestartSlowWorkers>(&seen_));
  EXPECT_EQ(controller_.Tick(1500), 1u);

  EXPECT_EQ(seen_.now_ms, 1500);
  ASSERT_EQ(seen_.nodes.size(), 2u);
  EXPECT_TRUE(seen_.nodes[0].alive);
  ASSERT_EQ(seen_.workers.size(), 2u);
  const WorkerSignals& fast = seen_.workers[0];
  const WorkerSignals& slow = seen_.workers[1];
  EXPECT_EQ(fast.worker_id, "fast/0");
  EXPECT_DOUBLE_EQ(fast.records_per_s, 1000.0);
  EXPECT_EQ(fast.last_seen_ms, 1000);
  EXPECT_EQ(fast.shards_committed, 0u);
  EXPECT_DOUBLE_EQ(fast.cpu_seconds, 1.5);
  EXPECT_EQ(fast.rss_bytes, 1 << 20);
  EXPECT_EQ(fast.counters.at("batches"), 100u);
  EXPECT_EQ(slow.worker_id, "slow/1");
  EXPECT_EQ(slow.node_id, "slow");
  EXPECT_DOUBLE_EQ(slow.records_per_s, 100.0);
  EXPECT_EQ(slow.shards_committed, 1u);

  EXPECT_TRUE(Heartbeat(registry_, "fast", 1600).empty());
  const auto actions = Heartbeat(registry_, "slow", 1600);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind(), v1::Action::KIND_RESTART_WORKER);
  EXPECT_EQ(actions[0].local_rank(), 1);
  EXPECT_EQ(actions[0].reason(), "slow/1 is slow");
  // Delivered once.
  EXPECT_TRUE(Heartbeat(registry_, "slow", 1700).empty());
}

TEST_F(ControllerTest, ActionForANodeThatDiedIsNotDeliveredToItsNextAgent) {
  controller_.AddPolicy(std::make_unique<RestartSlowWorkers>(&seen_));
  // "slow" stops heartbeating and is declared dead before the policy runs.
  Heartbeat(registry_, "fast", 5000);
  ASSERT_EQ(registry_.CollectDeadNodes(5000, 3000), std::vector<std::string>{"slow"});
  // The policy still asks to restart slow/1 (its last reports are within the speed window).
  EXPECT_EQ(controller_.Tick(5000), 0u);
  ASSERT_EQ(seen_.workers.size(), 2u);
  EXPECT_DOUBLE_EQ(seen_.workers[1].records_per_s, 100.0);
  ASSERT_EQ(seen_.nodes.size(), 2u);
  EXPECT_FALSE(seen_.nodes[1].alive);
  // A new agent process registers the node again: it must not inherit the stale restart.
  ASSERT_TRUE(registry_.RegisterNode("slow", 201, 6000, kMaxNodes).ok());
  EXPECT_TRUE(Heartbeat(registry_, "slow", 6000).empty());
}

TEST_F(ControllerTest, WithoutPoliciesTickQueuesNothing) {
  EXPECT_EQ(controller_.policies(), 0u);
  EXPECT_EQ(controller_.Tick(1500), 0u);
  EXPECT_TRUE(Heartbeat(registry_, "slow", 1600).empty());
  EXPECT_TRUE(Heartbeat(registry_, "fast", 1600).empty());
}

// A test policy: moves the workers of node `from` to node `to` once.
class MoveNode : public Policy {
 public:
  MoveNode(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  std::string_view name() const override { return "move-node"; }
  std::vector<PolicyAction> Evaluate(const ClusterView& view) override {
    progress = view.progress;
    if (done_) return {};
    done_ = true;
    std::vector<PolicyAction> out(2);
    out[0].node_id = to_;
    out[0].action.set_worker_count(2);
    out[1].node_id = from_;
    out[1].action.set_worker_count(0);
    for (auto& a : out) a.action.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
    return out;
  }
  JobProgress progress;

 private:
  std::string from_, to_;
  bool done_ = false;
};

TEST_F(ControllerTest, SparesArePlannedEmptyAndWorkerCountActionsMoveWorkBetweenNodes) {
  ASSERT_TRUE(registry_.RegisterNode("spare", 300, 0, kMaxNodes, /*spare=*/true).ok());
  EXPECT_EQ(registry_.KnownNodes(), 3u);
  EXPECT_EQ(registry_.KnownWorkingNodes(), 2u);  // a spare does not make a generation wait
  EXPECT_EQ(registry_.NodeWorkers("spare"), 0);
  EXPECT_EQ(registry_.NodeWorkers("slow"), std::nullopt);  // follows the job-wide count
  const auto persisted = registry_.TakeChangedNodeWorkers();
  ASSERT_TRUE(persisted.has_value());
  EXPECT_EQ(*persisted, (std::map<std::string, int32_t>{{"spare", 0}}));
  EXPECT_FALSE(registry_.TakeChangedNodeWorkers().has_value());
  // `spare` is read at the first registration only: a spare that was given workers and whose
  // agent registers again (a restarted master) keeps them.
  ASSERT_TRUE(registry_.RegisterNode("fast", 101, 0, kMaxNodes, /*spare=*/true).ok());
  EXPECT_EQ(registry_.NodeWorkers("fast"), std::nullopt);

  auto move = std::make_unique<MoveNode>("slow", "spare");
  MoveNode* policy = move.get();
  controller_.AddPolicy(std::move(move));
  EXPECT_EQ(controller_.Tick(1500, JobProgress{.records_total = 90, .records_done = 30}), 2u);
  EXPECT_EQ(policy->progress.records_total, 90u);
  EXPECT_EQ(policy->progress.records_done, 30u);
  EXPECT_EQ(registry_.NodeWorkers("spare"), 2);
  EXPECT_EQ(registry_.NodeWorkers("slow"), 0);
  EXPECT_EQ(registry_.KnownWorkingNodes(), 2u);
  std::map<std::string, std::optional<int32_t>> plans;
  for (const auto& n : registry_.LiveNodePlans()) plans[n.node_id] = n.workers;
  EXPECT_EQ(plans, (std::map<std::string, std::optional<int32_t>>{
                       {"fast", std::nullopt}, {"slow", 0}, {"spare", 2}}));
  EXPECT_EQ(Heartbeat(registry_, "spare", 1600).at(0).worker_count(), 2);
  EXPECT_EQ(Heartbeat(registry_, "slow", 1600).at(0).worker_count(), 0);
  const auto moved = registry_.TakeChangedNodeWorkers();
  ASSERT_TRUE(moved.has_value());
  EXPECT_EQ(moved->size(), 2u);

  // `baton scale` (an action for every node) reaches the nodes that run workers, which follow
  // the job-wide count again; the emptied node stays empty.
  v1::Action scale;
  scale.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
  scale.set_worker_count(3);
  EXPECT_EQ(registry_.QueueActionForAll(scale), 2);
  EXPECT_EQ(registry_.NodeWorkers("spare"), std::nullopt);
  EXPECT_EQ(registry_.NodeWorkers("slow"), 0);
  EXPECT_TRUE(Heartbeat(registry_, "slow", 1700).empty());
  EXPECT_EQ(Heartbeat(registry_, "fast", 1700).size(), 1u);

  // A restarted master's registry takes the counts back from the state store.
  const std::string stored = EncodeNodeWorkers(*moved);
  EXPECT_EQ(stored, "slow=0,spare=2");
  EXPECT_EQ(DecodeNodeWorkers(stored), *moved);
  // Malformed entries are skipped (those nodes follow the job-wide count).
  EXPECT_EQ(DecodeNodeWorkers("a=1,b=,=3,c=x,d=-1,e=99999,f=0"),
            (std::map<std::string, int32_t>{{"a", 1}, {"f", 0}}));
  Registry restarted(10000);
  restarted.RestoreNodeWorkers(DecodeNodeWorkers(stored));
  ASSERT_TRUE(restarted.RegisterNode("slow", 200, 0, kMaxNodes).ok());
  EXPECT_EQ(restarted.NodeWorkers("slow"), 0);
}

TEST_F(ControllerTest, ADeadNodesWorkersMoveToASpareThatRegisteredAsOne) {
  ASSERT_TRUE(registry_.RegisterNode("spare-b", 301, 0, kMaxNodes, /*spare=*/true).ok());
  ASSERT_TRUE(registry_.RegisterNode("spare-a", 300, 0, kMaxNodes, /*spare=*/true).ok());
  // An idle node that did not register as a spare (emptied by a policy) is no replacement.
  v1::Action empty;
  empty.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
  empty.set_worker_count(0);
  ASSERT_TRUE(registry_.QueueActionIfAlive("fast", empty));
  Heartbeat(registry_, "fast", 4000);
  Heartbeat(registry_, "spare-a", 4000);
  Heartbeat(registry_, "spare-b", 4000);
  ASSERT_EQ(registry_.CollectDeadNodes(5000, 3000), std::vector<std::string>{"slow"});
  // "slow" followed the job-wide count (3): the first spare by rank takes it.
  EXPECT_EQ(registry_.ReplaceWithSpare("slow", 3, "node slow died"), "spare-b");
  EXPECT_EQ(registry_.NodeWorkers("spare-b"), 3);
  EXPECT_EQ(registry_.NodeWorkers("slow"), 0);  // back, it idles
  const auto actions = Heartbeat(registry_, "spare-b", 5100);
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0].kind(), v1::Action::KIND_SET_WORKER_COUNT);
  EXPECT_EQ(actions[0].worker_count(), 3);
  EXPECT_EQ(actions[0].reason(), "node slow died");
  // A dead node that ran no worker needs no replacement; with the last spare taken, none is left.
  EXPECT_EQ(registry_.ReplaceWithSpare("slow", 3, "again"), std::nullopt);
  ASSERT_EQ(registry_.CollectDeadNodes(9000, 3000).size(), 3u);  // all silent since 4000-5100
  EXPECT_EQ(registry_.ReplaceWithSpare("spare-b", 3, "x"), std::nullopt);  // spare-a is dead too
}

}  // namespace
}  // namespace baton::master
