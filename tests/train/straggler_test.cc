// AntDT's straggler handling without processes: the split arithmetic, the plan's wire form, the
// monitor's state machine and the policy's decisions, fed with reports from a seeded generator.
// The end-to-end cases (real ranks slowed for real, the plan applied, nothing lost) are in
// train_job_test.cc.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "train/straggler/balance.h"
#include "train/straggler/batch_plan.h"
#include "train/straggler/straggler_monitor.h"
#include "train/straggler/straggler_policy.h"
#include "train/straggler/straggler_spec.h"

namespace baton::train {
namespace {

int64_t Sum(const std::vector<int64_t>& v) {
  return std::accumulate(v.begin(), v.end(), int64_t{0});
}

TEST(ProportionalShares, SplitsByLargestRemainderAndKeepsTheBatch) {
  const std::vector<double> equal = {1, 1, 1};
  EXPECT_EQ(ProportionalShares(10, equal, 1, 0), (std::vector<int64_t>{4, 3, 3}));
  const std::vector<double> one_slow = {1, 1, 1, 1.0 / 3};
  // 256 * (1, 1, 1, 1/3) / (10/3) = 76.8 x3, 25.6: floors 76 76 76 25 (253), three left go to
  // the largest fractions (.8 .8 .8).
  EXPECT_EQ(ProportionalShares(256, one_slow, 1, 0), (std::vector<int64_t>{77, 77, 77, 25}));
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> speed(0.01, 10);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<double> v(1 + rng() % 8);
    for (double& x : v) x = speed(rng);
    const int64_t global = static_cast<int64_t>(v.size()) + static_cast<int64_t>(rng() % 1000);
    const std::vector<int64_t> rows = ProportionalShares(global, v, 1, 0);
    ASSERT_EQ(Sum(rows), global);
    const double total = std::accumulate(v.begin(), v.end(), 0.0);
    for (size_t i = 0; i < v.size(); ++i) {
      ASSERT_GE(rows[i], 1);
      // Within one row of the exact share, unless the floor of 1 lifted it.
      ASSERT_LT(std::abs(static_cast<double>(rows[i]) - global * v[i] / total), 1.0 + 1e-9)
          << "trial " << trial;
    }
  }
}

TEST(ProportionalShares, ClampsAndGivesWhatTheClampCutsToTheOthers) {
  const std::vector<double> v = {100, 1, 1};
  // Unclamped 98, 1, 1; at most 60: the 38 cut off go to the others, equally fast.
  const std::vector<int64_t> rows = ProportionalShares(100, v, 1, 60);
  EXPECT_EQ(rows, (std::vector<int64_t>{60, 20, 20}));
  // At least 10 each: the slow ones are lifted, the fast one pays.
  EXPECT_EQ(ProportionalShares(100, v, 10, 0), (std::vector<int64_t>{80, 10, 10}));
  // Both bounds at once: 256 * (1, 1/4) / 1.25 = 204.8, 51.2, clamped to [100, 200].
  const std::vector<double> four_to_one = {4, 1};
  EXPECT_EQ(ProportionalShares(256, four_to_one, 100, 200), (std::vector<int64_t>{156, 100}));
  // 30 rows over speeds 1, 5, 100 within [3, 12].
  const std::vector<double> spread = {1, 5, 100};
  // The fast two are capped at 12, so the slowest takes the remaining 6 (not its proportional 3).
  EXPECT_EQ(ProportionalShares(30, spread, 3, 12), (std::vector<int64_t>{6, 12, 12}));
  // Speeds of any unit, however large or small.
  const std::vector<double> huge = {1e300, 1e300}, tiny = {1e-300, 3e-300};
  EXPECT_EQ(ProportionalShares(64, huge, 1, 0), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(ProportionalShares(64, tiny, 1, 0), (std::vector<int64_t>{16, 48}));
  std::mt19937 rng(11);
  for (int trial = 0; trial < 2000; ++trial) {
    const size_t n = 1 + rng() % 6;
    std::vector<double> speeds(n);
    for (double& x : speeds) x = std::ldexp(1.0 + rng() % 1000, static_cast<int>(rng() % 40) - 20);
    const int64_t global = static_cast<int64_t>(n) * (1 + static_cast<int64_t>(rng() % 50));
    const int64_t lo = 1 + static_cast<int64_t>(rng()) % (global / static_cast<int64_t>(n));
    const int64_t hi = rng() % 2
                           ? 0
                           : (global + static_cast<int64_t>(n) - 1) / static_cast<int64_t>(n) +
                                 static_cast<int64_t>(rng() % 20);
    const std::vector<int64_t> rows = ProportionalShares(global, speeds, lo, hi);
    ASSERT_EQ(Sum(rows), global) << "trial " << trial;
    for (int64_t r : rows) {
      ASSERT_GE(r, lo);
      if (hi > 0) {
        ASSERT_LE(r, hi);
      }
    }
  }
}

TEST(PredictedStepMs, IsTheSlowestRanksRowsOverSpeed) {
  const std::vector<int64_t> rows = {64, 64};
  const std::vector<double> speeds = {4, 1};
  EXPECT_DOUBLE_EQ(PredictedStepMs(rows, speeds), 64);
  EXPECT_EQ(MicroCaps(std::vector<int64_t>{100, 7}, 8), (std::vector<int64_t>{8, 0}));
}

TEST(BatchPlan, RoundTripsAndRefusesWhatDoesNotFit) {
  BatchPlan p{.version = 3,
              .generation = 7,
              .rows = {77, 77, 77, 25},
              .micro = {0, 0, 16, 0},
              .reason = "a straggler: predicted 61.0 -> 35.2 ms"};
  auto back = DecodeBatchPlan(EncodeBatchPlan(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  EXPECT_TRUE(CheckBatchPlan(p, 4, 256).ok());
  EXPECT_FALSE(CheckBatchPlan(p, 3, 256).ok());
  EXPECT_FALSE(CheckBatchPlan(p, 4, 255).ok());
  p.rows = {256, 0, 0, 0};
  EXPECT_FALSE(CheckBatchPlan(p, 4, 256).ok());
  for (const char* bad : {"", "version=x generation=1 rows=1 micro=0 reason=", "version=1",
                          "version=1 generation=1 rows=1,,2 micro=0,0 reason=",
                          "version=1 generation=1 rows=1 micro=0"}) {
    EXPECT_FALSE(DecodeBatchPlan(bad).ok()) << bad;
  }
  EXPECT_EQ(EqualPlan(10, 4, 1).rows, (std::vector<int64_t>{3, 3, 2, 2}));
  EXPECT_EQ(EqualPlan(2, 4, 1).rows, (std::vector<int64_t>{1, 1, 1, 1}));  // one row each at least
}

TEST(InjectedSlowdown, ComesAndGoesAndScalesTheRanksOwnCompute) {
  StragglerSpec s;
  s.inject.push_back(
      {.rank = 1, .node = "", .slowdown = 3, .start_s = 10, .on_s = 5, .period_s = 20});
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 1, "n0", 9.9, 4.0, 16), 0);
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 1, "n0", 12, 4.0, 16), 8.0);  // (3 - 1) x 4 ms
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 1, "n0", 16, 4.0, 16), 0);
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 1, "n0", 31, 4.0, 16), 8.0);  // the next burst
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 0, "n0", 12, 4.0, 16), 0);    // another rank
  s.emulate_us_per_sample = 500;                                    // 16 rows: 8 ms emulated
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 0, "n0", 12, 4.0, 16), 8.0);
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 1, "n0", 12, 4.0, 16), 8.0 + 24.0);
}

TEST(InjectedSlowdown, OnANodeSlowsEveryWorkerThereWhateverItsRank) {
  StragglerSpec s;
  s.inject.push_back({.rank = -1, .node = "slow-host", .slowdown = 4});
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 0, "slow-host", 1, 2.0, 8), 6.0);
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 3, "slow-host", 1, 2.0, 8), 6.0);
  EXPECT_DOUBLE_EQ(InjectedDelayMs(s, 0, "spare", 1, 2.0, 8), 0);  // moved off: fast again
}

// Reports of `world` ranks: rows per step and compute ms with multiplicative noise, rank `slow`
// `factor` x slower.
struct Reports {
  explicit Reports(uint64_t seed, double noise = 0.1) : rng(seed), jitter(1 - noise, 1 + noise) {}
  RankReport Next(double rows, double ms_per_row, double factor) {
    return {rows, rows * ms_per_row * factor * jitter(rng)};
  }
  std::mt19937 rng;
  std::uniform_real_distribution<double> jitter;
};

TEST(StragglerMonitor, EqualSpeedsWithNoiseNeverFlagAnyone) {
  StragglerSpec spec;
  StragglerMonitor m(spec);
  m.Reset(4, 0);
  // +-15 % per report (each averages the steps of 250 ms): a shared machine. Beyond about +-25 %
  // two ranks' medians of 4 reports drift 1.3x apart three windows in a row now and then.
  Reports r(42, 0.15);
  for (int64_t t = 0; t < 20000; ++t) {
    for (int rank = 0; rank < 4; ++rank) m.Add(rank, r.Next(64, 0.3, 1));
    if (m.WindowReady()) {
      m.Evaluate(t * 250);
      ASSERT_FALSE(m.any_straggler()) << "window " << m.windows();
    }
  }
  EXPECT_GT(m.windows(), 19000);
}

TEST(StragglerMonitor, ConfirmsClassifiesAndClears) {
  StragglerSpec spec;  // window 4, threshold 1.3, confirm 3, persistent after 300 s
  StragglerMonitor m(spec);
  m.Reset(4, 0);
  Reports r(1);
  int64_t now = 0;
  auto window = [&](double factor) {
    for (int rank = 0; rank < 4; ++rank) m.Add(rank, r.Next(64, 0.3, rank == 2 ? factor : 1));
    now += 250;
    return m.WindowReady() ? &m.Evaluate(now) : nullptr;
  };
  for (int i = 0; i < 3; ++i) EXPECT_EQ(window(1), nullptr);  // the window fills first
  ASSERT_NE(window(1), nullptr);
  // Rank 2 turns 3x slower: the median of its window moves after 3 reports, then 2 to confirm.
  int flagged_at = -1;
  for (int i = 0; i < 10 && flagged_at < 0; ++i) {
    if ((*window(3))[2].straggler) flagged_at = i;
  }
  EXPECT_GE(flagged_at, 2);
  EXPECT_LE(flagged_at, 4);
  EXPECT_EQ(m.states()[2].cls, StragglerClass::kTransient);  // not flagged from the start
  EXPECT_NEAR(m.states()[2].ratio, 3, 0.5);
  for (int rank : {0, 1, 3}) EXPECT_FALSE(m.states()[rank].flagged);
  // Flagged for 300 s: persistent.
  for (int i = 0; i < 1200; ++i) window(3);
  EXPECT_EQ(m.states()[2].cls, StragglerClass::kPersistent);
  // Back to speed: cleared within the window plus `confirm`.
  for (int i = 0; i < 6; ++i) window(1);
  EXPECT_FALSE(m.any_straggler());
  EXPECT_EQ(m.states()[2].cls, StragglerClass::kNone);
}

TEST(StragglerMonitor, FlagsMustComeInARowToConfirm) {
  StragglerSpec spec;  // confirm 3
  spec.window = 2;
  StragglerMonitor m(spec);
  m.Reset(2, 0);
  // Every third report slow: windows of two flag, flag, clear, flag, flag, clear...: never three
  // in a row (counting flags across the clear windows would confirm at the fourth window).
  for (int i = 0; i < 40; ++i) {
    const double factor = i % 3 == 0 ? 3 : 1;
    m.Add(0, {16, 16 * 0.1});
    m.Add(1, {16, 16 * 0.1 * factor});
    if (m.WindowReady()) m.Evaluate(i * 200);
    ASSERT_FALSE(m.any_straggler()) << "report " << i;
  }
}

TEST(StragglerMonitor, ASteadyGapFromTheStartIsDeterministicAndPerRowSpeedIgnoresTheSplit) {
  StragglerSpec spec;
  StragglerMonitor m(spec);
  m.Reset(2, 0);
  Reports r(3, 0.02);
  for (int i = 0; i < 10; ++i) {
    // The slow rank already runs a quarter of the rows of the fast one: its per-row speed, not its
    // step time, shows it.
    m.Add(0, r.Next(96, 0.1, 1));
    m.Add(1, r.Next(32, 0.1, 3));
    if (m.WindowReady()) m.Evaluate(i * 250);
  }
  EXPECT_TRUE(m.states()[1].straggler);
  EXPECT_EQ(m.states()[1].cls, StragglerClass::kDeterministic);
  EXPECT_NEAR(m.states()[0].speed / m.states()[1].speed, 3, 0.2);
}

// The master's side of a policy: what it published and noted.
class RecordingHost final : public master::PolicyHost {
 public:
  void SetJobValue(const std::string& key, const std::string& value) override {
    if (key != kBatchPlanKey) {
      values[key] = value;
      return;
    }
    auto plan = DecodeBatchPlan(value);
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    plans.push_back(*plan);
  }
  std::optional<std::string> GetJobValue(const std::string& key) override {
    if (key != kBatchPlanKey) {
      auto it = values.find(key);
      return it == values.end() ? std::nullopt : std::optional(it->second);
    }
    if (plans.empty()) return std::nullopt;
    return EncodeBatchPlan(plans.back());
  }
  void SetWorkerNote(const std::string& worker_id, const std::string& name, double value) override {
    notes[worker_id + " " + name] = value;
  }
  std::vector<BatchPlan> plans;
  std::map<std::string, double> notes;
  std::map<std::string, std::string> values;  // other keys
};

// A generation of `world` ranks as the policy sees it through the cluster view: each tick every
// rank reports one more step, running the last plan published (as the trainer would).
class FakeGeneration {
 public:
  FakeGeneration(int world, int64_t global, uint64_t seed)
      : world_(world),
        rows_(EqualPlan(global, world, 1).rows),
        reports_(seed),
        rows_total_(static_cast<size_t>(world), 0),
        compute_total_(static_cast<size_t>(world), 0) {}
  master::ClusterView Tick(const std::vector<double>& factors, const RecordingHost& host) {
    if (!host.plans.empty() && host.plans.back().version != version_) {
      version_ = host.plans.back().version;
      rows_ = host.plans.back().rows;
    }
    master::ClusterView view;
    view.now_ms = (++step_) * 250;
    for (int r = 0; r < world_; ++r) {
      const RankReport rep =
          reports_.Next(static_cast<double>(rows_[static_cast<size_t>(r)]), 0.3, factors[r]);
      // Ten steps a tick, as running totals.
      rows_total_[static_cast<size_t>(r)] += 10 * rep.rows;
      compute_total_[static_cast<size_t>(r)] += 10 * rep.compute_ms;
      master::WorkerSignals w;
      w.worker_id = "n" + std::to_string(r / 2) + "/" + std::to_string(r % 2);
      w.gauges = {{"train.generation", 1},
                  {"train.world", world_},
                  {"train.rank", r},
                  {"train.rows_total", rows_total_[static_cast<size_t>(r)]},
                  {"train.compute_ms_total", compute_total_[static_cast<size_t>(r)]},
                  {"train.plan_version", static_cast<double>(version_)}};
      view.workers.push_back(w);
    }
    return view;
  }
  const std::vector<int64_t>& rows() const { return rows_; }

 private:
  int world_;
  std::vector<int64_t> rows_;
  Reports reports_;
  uint64_t version_ = 0;
  int64_t step_ = 0;
  std::vector<double> rows_total_, compute_total_;
};

StragglerSpec Rules(StragglerRule rule) {
  StragglerSpec s;
  s.rules = {rule};
  return s;
}

TEST(StragglerPolicy, EqualSpeedsTakeNoActionOverALongNoisyRun) {
  RecordingHost host;
  StragglerPolicy policy(Rules(StragglerRule::kAdjustBatch), 256, host);
  FakeGeneration gen(4, 256, 5);
  for (int t = 0; t < 20000; ++t)
    EXPECT_TRUE(policy.Evaluate(gen.Tick({1, 1, 1, 1}, host)).empty());
  EXPECT_TRUE(host.plans.empty());
  EXPECT_EQ(gen.rows(), (std::vector<int64_t>{64, 64, 64, 64}));
  EXPECT_DOUBLE_EQ(host.notes.at("n1/1 straggler.class"), 0);
}

TEST(StragglerPolicy, AdjustBatchFollowsATransientStragglerAndRevertsWhenItClears) {
  RecordingHost host;
  StragglerPolicy policy(Rules(StragglerRule::kAdjustBatch), 256, host);
  FakeGeneration gen(4, 256, 6);
  for (int t = 0; t < 20; ++t) policy.Evaluate(gen.Tick({1, 1, 1, 1}, host));
  ASSERT_TRUE(host.plans.empty());
  int acted_after = -1;
  for (int t = 0; t < 60; ++t) {
    policy.Evaluate(gen.Tick({1, 1, 1, 3}, host));
    if (acted_after < 0 && !host.plans.empty()) acted_after = t;
  }
  ASSERT_GE(acted_after, 0);
  EXPECT_LE(acted_after, 8);  // the window's median moves after 3 reports, `confirm` 2 more
  // Proportional to speed: about 256 / (3 + 1/3) = 77 for the fast ones, 26 for the slow one.
  const std::vector<int64_t>& rows = gen.rows();
  EXPECT_EQ(Sum(rows), 256);
  EXPECT_NEAR(static_cast<double>(rows[3]), 25.6, 4);
  for (int r = 0; r < 3; ++r) EXPECT_NEAR(static_cast<double>(rows[r]), 76.8, 4);
  EXPECT_DOUBLE_EQ(host.notes.at("n1/1 straggler.class"), 1);  // transient
  EXPECT_NEAR(host.notes.at("n1/1 straggler.ratio"), 3, 0.5);
  // Hysteresis: with the straggler steady, the split settles (no flapping).
  const size_t settled = host.plans.size();
  EXPECT_LE(settled, 3u);
  for (int t = 0; t < 400; ++t) policy.Evaluate(gen.Tick({1, 1, 1, 3}, host));
  EXPECT_EQ(host.plans.size(), settled);
  // It clears: back to the equal split.
  for (int t = 0; t < 40; ++t) policy.Evaluate(gen.Tick({1, 1, 1, 1}, host));
  EXPECT_EQ(gen.rows(), (std::vector<int64_t>{64, 64, 64, 64}));
  EXPECT_EQ(host.plans.back().reason.substr(0, 12), "no straggler");
  EXPECT_DOUBLE_EQ(host.notes.at("n1/1 straggler.class"), 0);
  for (size_t i = 1; i < host.plans.size(); ++i) {
    EXPECT_GT(host.plans[i].version, host.plans[i - 1].version);
  }
}

TEST(StragglerPolicy, ARestartedMasterTakesUpThePlanItsEarlierLifePublished) {
  RecordingHost host;
  FakeGeneration gen(4, 256, 9);
  {
    StragglerPolicy first(Rules(StragglerRule::kAdjustBatch), 256, host);
    for (int t = 0; t < 40; ++t) first.Evaluate(gen.Tick({1, 1, 1, 3}, host));
  }
  ASSERT_FALSE(host.plans.empty());
  const BatchPlan running = host.plans.back();
  StragglerPolicy second(Rules(StragglerRule::kAdjustBatch), 256, host);
  second.Evaluate(gen.Tick({1, 1, 1, 1}, host));
  EXPECT_EQ(second.plan(), running);
  // The straggler is gone by now: the new life steers the ranks back, with newer versions.
  for (int t = 0; t < 60; ++t) second.Evaluate(gen.Tick({1, 1, 1, 1}, host));
  EXPECT_EQ(gen.rows(), (std::vector<int64_t>{64, 64, 64, 64}));
  EXPECT_GT(host.plans.back().version, running.version);
}

TEST(StragglerPolicy, ProfileDecidesOnceWithMicroBatchesAndKeepsIt) {
  StragglerSpec spec = Rules(StragglerRule::kProfile);
  spec.micro_batch = 32;
  RecordingHost host;
  StragglerPolicy policy(spec, 128, host);
  FakeGeneration gen(2, 128, 8);
  for (int t = 0; t < 200; ++t) policy.Evaluate(gen.Tick({1, 2}, host));
  ASSERT_EQ(host.plans.size(), 1u);
  // Speeds 1 : 1/2: 85.3 and 42.7 rows; the fast rank's part runs in passes of 32.
  // Profiled over one window (4 samples a rank, +-10 % noise each): within 5 %.
  EXPECT_NEAR(static_cast<double>(gen.rows()[0]), 85.3, 4.3);
  EXPECT_EQ(Sum(gen.rows()), 128);
  EXPECT_EQ(host.plans[0].micro, (std::vector<int64_t>{32, 32}));
}

// The nodes of FakeGeneration's ranks (two a node: n0, n1) as the agents report them, plus
// `spares` spare nodes (planned to run no worker), and the job's progress.
master::ClusterView WithNodes(master::ClusterView view, int world, int spares,
                              uint64_t records_left) {
  for (int i = 0; i < world / 2 + spares; ++i) {
    const bool spare = i >= world / 2;
    view.nodes.push_back(master::NodeSignals{.node_id = "n" + std::to_string(i),
                                             .rank = i,
                                             .workers_running = spare ? 0 : 2,
                                             .planned_workers = spare ? 0 : -1});
  }
  view.progress = {.records_total = records_left + 1000, .records_done = 1000};
  view.workers_per_node = 2;
  return view;
}

StragglerSpec KillRestart() {
  StragglerSpec s;
  s.rules = {StragglerRule::kAdjustBatch, StragglerRule::kKillRestart};
  s.persistent_after_s = 5;  // 20 ticks of FakeGeneration
  s.restart_cost_s = 1;
  return s;
}

TEST(StragglerPolicy, KillRestartMovesALastingStragglersNodeToASpareOnlyWhenItPays) {
  RecordingHost host;
  StragglerPolicy policy(KillRestart(), 256, host);
  FakeGeneration gen(4, 256, 11);
  // About 10 rows a ms: 2,000 rows left is 0.2 s, nothing a 1 s restart could pay back.
  for (int t = 0; t < 80; ++t) {
    EXPECT_TRUE(policy.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, host), 4, 1, 2000)).empty());
  }
  ASSERT_FALSE(host.plans.empty());  // adjust_batch acted meanwhile
  // No spare node: nothing to move to, however much is left.
  for (int t = 0; t < 20; ++t) {
    EXPECT_TRUE(policy.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, host), 4, 0, 10'000'000)).empty());
  }
  // Enough left and a spare: rank 3's node n1 moves to n2, both in one decision.
  std::vector<master::PolicyAction> actions;
  for (int t = 0; t < 20 && actions.empty(); ++t) {
    actions = policy.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, host), 4, 1, 10'000'000));
  }
  ASSERT_EQ(actions.size(), 2u);
  EXPECT_EQ(actions[0].node_id, "n2");
  EXPECT_EQ(actions[0].action.kind(), v1::Action::KIND_SET_WORKER_COUNT);
  EXPECT_EQ(actions[0].action.worker_count(), 2);
  EXPECT_EQ(actions[1].node_id, "n1");
  EXPECT_EQ(actions[1].action.worker_count(), 0);
  EXPECT_NE(actions[0].action.reason().find("kill_restart"), std::string::npos);
  // One move at a time: none while its generation has not started.
  for (int t = 0; t < 40; ++t) {
    EXPECT_TRUE(policy.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, host), 4, 1, 10'000'000)).empty());
  }
  EXPECT_EQ(host.values.at("train.emptied_nodes"), "n1");
}

TEST(StragglerPolicy, KillRestartNeverMovesBackToANodeItEmptiedNorPastItsBudget) {
  // The same ticks move n1 to n2 when nothing forbids it...
  RecordingHost free_host;
  StragglerPolicy free_policy(KillRestart(), 256, free_host);
  FakeGeneration free_gen(4, 256, 12);
  size_t moves = 0;
  for (int t = 0; t < 120; ++t) {
    moves +=
        free_policy.Evaluate(WithNodes(free_gen.Tick({1, 1, 1, 3}, free_host), 4, 1, 10'000'000))
            .size();
  }
  EXPECT_EQ(moves, 2u);
  // ...but not when an earlier life of the master emptied n2,
  RecordingHost host;
  host.values["train.emptied_nodes"] = "n2";
  StragglerPolicy policy(KillRestart(), 256, host);
  FakeGeneration gen(4, 256, 12);
  for (int t = 0; t < 120; ++t) {
    EXPECT_TRUE(policy.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, host), 4, 1, 10'000'000)).empty());
  }
  // nor with no budget.
  StragglerSpec no_budget = KillRestart();
  no_budget.restarts_per_hour = 0;
  RecordingHost other;
  StragglerPolicy spent(no_budget, 256, other);
  for (int t = 0; t < 120; ++t) {
    EXPECT_TRUE(spent.Evaluate(WithNodes(gen.Tick({1, 1, 1, 3}, other), 4, 1, 10'000'000)).empty());
  }
}

}  // namespace
}  // namespace baton::train
