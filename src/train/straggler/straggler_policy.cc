#include "train/straggler/straggler_policy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "common/text_list.h"
#include "train/straggler/balance.h"

namespace baton::train {
namespace {

// Ticks of a generation not sampled: 0.4 s at the master's 200 ms (the first steps pay for process
// start, the step-0 checkpoint and the first leases). A full window here cost the bench's
// emulated k = 4 case 0.4 s more at 4x slowness, and did not stop the real setting's false
// flags, which come later (docs/benchmarks.md).
constexpr int64_t kWarmUpTicks = 2;

// Job KV: the nodes kill_restart moved workers off, comma-separated, so that a restarted master
// keeps away from them too (their planned count of 0 makes them look like spares).
constexpr const char* kEmptiedNodesKey = "train.emptied_nodes";
constexpr int64_t kHourMs = 3600 * 1000;

std::optional<double> Gauge(const master::WorkerSignals& w, const char* name) {
  auto it = w.gauges.find(name);
  if (it == w.gauges.end() || !std::isfinite(it->second)) return std::nullopt;
  return it->second;
}

std::string Rows(const std::vector<int64_t>& rows) {
  std::string s;
  for (int64_t r : rows) s += (s.empty() ? "" : " ") + std::to_string(r);
  return "[" + s + "]";
}

}  // namespace

StragglerPolicy::StragglerPolicy(StragglerSpec spec, int64_t global_batch, master::PolicyHost& host)
    : spec_(std::move(spec)), global_batch_(global_batch), host_(host), monitor_(spec_) {
  if (std::optional<std::string> text = host_.GetJobValue(kEmptiedNodesKey)) {
    for (std::string_view node : SplitOn(*text, ',')) {
      if (!node.empty()) emptied_.emplace_back(node);
    }
  }
}

void StragglerPolicy::StartGeneration(uint64_t generation, int world, int64_t now_ms) {
  generation_ = generation;
  if (move_pending_since_ms_ >= 0 && world >= move_world_) {
    // The move's cost: from the action until the ranks of its full-size generation report.
    restart_cost_ms_ = static_cast<double>(now_ms - move_pending_since_ms_);
    spdlog::info("straggler: the move to a spare node took {:.1f} s (the cost of the next one)",
                 restart_cost_ms_ / 1000);
    move_pending_since_ms_ = -1;
  }
  gen_rows_ = 0;
  gen_first_sample_ms_ = -1;
  monitor_.Reset(world, now_ms);
  worker_of_rank_.assign(static_cast<size_t>(world), "");
  shown_.assign(static_cast<size_t>(world), StragglerClass::kNone);
  seen_.clear();
  // What the ranks start from (batch_split.h): the equal split, or shares by known speeds; or,
  // for a master that restarted mid-generation, the plan its earlier life published for it.
  plan_ = EqualPlan(global_batch_, world, generation);
  if (spec_.speeds.size() == static_cast<size_t>(world)) {
    plan_.rows = ProportionalShares(std::max<int64_t>(global_batch_, world), spec_.speeds, 1, 0);
  }
  if (std::optional<std::string> text = host_.GetJobValue(kBatchPlanKey)) {
    Result<BatchPlan> stored = DecodeBatchPlan(*text);
    if (stored.ok()) {
      version_ = std::max(version_, stored->version);
      if (stored->generation == generation && CheckBatchPlan(*stored, world, global_batch_).ok()) {
        plan_ = std::move(*stored);
        spdlog::info("straggler: generation {} runs batch plan v{} ({})", generation, plan_.version,
                     plan_.reason);
      }
    }
  }
  windows_at_change_ = -1;
  profiled_ = false;
  halfway_ = false;
  warm_ticks_ = kWarmUpTicks;
}

std::vector<master::PolicyAction> StragglerPolicy::Evaluate(const master::ClusterView& view) {
  // The running generation is the newest any worker reports; its members say their rank.
  uint64_t generation = 0;
  int world = 0;
  for (const master::WorkerSignals& w : view.workers) {
    const auto g = Gauge(w, "train.generation"), n = Gauge(w, "train.world");
    if (!g || !n) continue;
    if (*g > static_cast<double>(generation)) {
      generation = static_cast<uint64_t>(*g);
      world = static_cast<int>(*n);
    }
  }
  if (world < 2) return {};  // not training yet, or alone: nobody to straggle behind
  if (generation != generation_ || world != monitor_.world()) {
    StartGeneration(generation, world, view.now_ms);
  }
  for (const master::WorkerSignals& w : view.workers) {
    const auto g = Gauge(w, "train.generation"), rank = Gauge(w, "train.rank"),
               rows = Gauge(w, "train.rows_total"), compute = Gauge(w, "train.compute_ms_total"),
               version = Gauge(w, "train.plan_version");
    if (!g || static_cast<uint64_t>(*g) != generation || !rank || !rows || !compute || !version ||
        *rank < 0 || *rank >= world) {
      continue;
    }
    worker_of_rank_[static_cast<size_t>(*rank)] = w.worker_id;
    // Versions grow over the job, across master restarts too: the ranks say the last one.
    version_ = std::max(version_, static_cast<uint64_t>(*version));
    // One sample per tick that saw the rank compute: the rows and compute time since the last;
    // none across a change of plan (two splits mixed) or a restarted process (totals from 0).
    Seen& seen = seen_[w.worker_id];
    const double rows_delta = *rows - seen.rows_total, ms_delta = *compute - seen.compute_ms_total;
    const bool sample =
        seen.rows_total >= 0 && rows_delta > 0 && ms_delta > 0 && seen.plan_version == *version;
    if (rows_delta != 0 || seen.plan_version != *version) {
      seen = Seen{*rows, *compute, *version};
    }
    if (sample && warm_ticks_ <= 0) {
      monitor_.Add(static_cast<int>(*rank), RankReport{rows_delta, ms_delta});
      // Rows the job trained since sampling began: its real rate, all-reduce waits included.
      if (gen_first_sample_ms_ < 0) gen_first_sample_ms_ = view.now_ms;
      gen_rows_ += rows_delta;
    }
  }
  --warm_ticks_;
  if (!monitor_.WindowReady()) return {};
  const std::vector<RankState>& states = monitor_.Evaluate(view.now_ms);
  Decide(states);
  return MaybeMove(states, view);
}

std::optional<double> StragglerPolicy::PredictedSavingMs(const std::string& node,
                                                         const master::ClusterView& view) const {
  const int n = monitor_.world();
  // papers/antdt.md §6.4: saved = T_rem x (1 - S_without / S_now), S from the settled speeds with
  // every rank of the node (a slow host slows all its workers) at the median speed of the ranks
  // elsewhere, split as the rules would split it; T_rem from the job's measured rate. Only the
  // compute part of a step shrinks: the saving is over the measured step, all-reduce included.
  const std::vector<double> speeds = monitor_.settled_speeds();
  std::vector<double> without = speeds, elsewhere;
  const std::string prefix = node + "/";
  for (int r = 0; r < n; ++r) {
    if (!worker_of_rank_[static_cast<size_t>(r)].starts_with(prefix)) {
      elsewhere.push_back(speeds[static_cast<size_t>(r)]);
    }
  }
  if (elsewhere.empty()) return std::nullopt;  // every rank is there: nothing to compare with
  std::nth_element(elsewhere.begin(), elsewhere.begin() + static_cast<long>(elsewhere.size() / 2),
                   elsewhere.end());
  for (int r = 0; r < n; ++r) {
    if (worker_of_rank_[static_cast<size_t>(r)].starts_with(prefix)) {
      without[static_cast<size_t>(r)] = elsewhere[elsewhere.size() / 2];
    }
  }
  const std::vector<int64_t> rows_without =
      spec_.has(StragglerRule::kAdjustBatch)
          ? ProportionalShares(std::max<int64_t>(global_batch_, n), without, 1, 0)
          : EqualPlan(global_batch_, n, generation_).rows;
  const double s_now = PredictedStepMs(plan_.rows, speeds);
  const double s_without = PredictedStepMs(rows_without, without);
  const double elapsed = static_cast<double>(view.now_ms - gen_first_sample_ms_);
  if (gen_rows_ <= 0 || elapsed <= 0 || view.progress.records_total == 0) return std::nullopt;
  const double rate = gen_rows_ / elapsed;  // rows per ms
  const double remaining_ms =
      static_cast<double>(view.progress.records_total - view.progress.records_done) / rate;
  const double step_ms = std::max(static_cast<double>(global_batch_) / rate, s_now);
  return remaining_ms * std::max(0.0, s_now - s_without) / step_ms;
}

std::vector<master::PolicyAction> StragglerPolicy::MaybeMove(const std::vector<RankState>& states,
                                                             const master::ClusterView& view) {
  if (!spec_.has(StragglerRule::kKillRestart)) return {};
  if (move_pending_since_ms_ >= 0) {
    // A move whose full-size generation never came (the spare died, a scale-down followed) must
    // not switch kill_restart off for good.
    const double patience = std::max(60'000.0, 10 * spec_.restart_cost_s * 1000);
    if (static_cast<double>(view.now_ms - move_pending_since_ms_) < patience) return {};
    spdlog::warn(
        "straggler: no full-size generation {:.0f} s after the last move; kill_restart "
        "may move again",
        patience / 1000);
    move_pending_since_ms_ = -1;
  }
  std::erase_if(moves_ms_, [&](int64_t t) { return view.now_ms - t >= kHourMs; });
  if (moves_ms_.size() >= static_cast<size_t>(spec_.restarts_per_hour)) return {};
  // The slowest straggler flagged for persistent_after_s (persistent, or deterministic: a slow
  // host from the start is as much worth leaving).
  const int n = monitor_.world();
  int slow = -1;
  for (int r = 0; r < n; ++r) {
    const RankState& s = states[static_cast<size_t>(r)];
    const bool lasting =
        s.straggler && s.flagged_since_ms >= 0 &&
        static_cast<double>(view.now_ms - s.flagged_since_ms) >= spec_.persistent_after_s * 1000;
    if (lasting && (slow < 0 || s.ratio > states[static_cast<size_t>(slow)].ratio)) slow = r;
  }
  if (slow < 0) {
    told_no_spare_ = false;
    return {};
  }
  const std::string& worker = worker_of_rank_[static_cast<size_t>(slow)];
  const std::string node = worker.substr(0, worker.rfind('/'));
  auto host = std::find_if(view.nodes.begin(), view.nodes.end(),
                           [&](const master::NodeSignals& s) { return s.node_id == node; });
  if (worker.empty() || host == view.nodes.end() || !host->alive) return {};
  const int32_t count = host->planned_workers >= 0 ? host->planned_workers : view.workers_per_node;
  if (count <= 0) return {};
  const std::optional<double> saved = PredictedSavingMs(node, view);
  if (!saved) return {};
  const double saved_ms = *saved;
  const double cost_ms = restart_cost_ms_ >= 0 ? restart_cost_ms_ : spec_.restart_cost_s * 1000;
  if (saved_ms <= spec_.restart_margin * cost_ms) return {};
  auto spare = std::find_if(view.nodes.begin(), view.nodes.end(), [&](const auto& s) {
    return s.alive && s.planned_workers == 0 && s.workers_running == 0 && s.node_id != node &&
           std::find(emptied_.begin(), emptied_.end(), s.node_id) == emptied_.end();
  });
  if (spare == view.nodes.end()) {
    if (!told_no_spare_) {
      spdlog::warn(
          "straggler: moving node {} off its slow host would save {:.0f} s, but no spare "
          "node is left (spare_nodes)",
          node, saved_ms / 1000);
      told_no_spare_ = true;
    }
    return {};
  }
  const std::string reason = fmt::format(
      "kill_restart: rank {} on {} is {:.2f}x slower for {:.0f} s; moving saves {:.0f} s > "
      "{:.1f} x restart cost {:.1f} s",
      slow, node, states[static_cast<size_t>(slow)].ratio,
      static_cast<double>(view.now_ms - states[static_cast<size_t>(slow)].flagged_since_ms) / 1000,
      saved_ms / 1000, spec_.restart_margin, cost_ms / 1000);
  spdlog::info("straggler: {} worker(s) move from node {} to spare node {} ({})", count, node,
               spare->node_id, reason);
  emptied_.push_back(node);
  std::string joined;
  for (const std::string& e : emptied_) joined += (joined.empty() ? "" : ",") + e;
  host_.SetJobValue(kEmptiedNodesKey, joined);
  moves_ms_.push_back(view.now_ms);
  move_pending_since_ms_ = view.now_ms;
  move_world_ = n;
  std::vector<master::PolicyAction> actions(2);
  actions[0].node_id = spare->node_id;
  actions[1].node_id = node;
  for (auto& a : actions) {
    a.action.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
    a.action.set_reason(reason);
  }
  actions[0].action.set_worker_count(count);
  actions[1].action.set_worker_count(0);
  return actions;
}

void StragglerPolicy::Decide(const std::vector<RankState>& states) {
  const int n = monitor_.world();
  for (int r = 0; r < n; ++r) {
    const RankState& s = states[static_cast<size_t>(r)];
    const std::string& worker = worker_of_rank_[static_cast<size_t>(r)];
    if (worker.empty()) continue;
    host_.SetWorkerNote(worker, "straggler.ratio", s.ratio);
    host_.SetWorkerNote(worker, "straggler.class", static_cast<double>(s.cls));
    if (s.cls != shown_[static_cast<size_t>(r)]) {
      if (s.cls == StragglerClass::kNone) {
        spdlog::info("straggler: rank {} ({}) cleared (ratio {:.2f})", r, worker, s.ratio);
      } else {
        spdlog::info(
            "straggler: rank {} ({}) is a {} straggler: {:.2f}x slower than its peers' "
            "median ({:.1f} vs {:.1f} rows/ms)",
            r, worker, ClassName(s.cls), s.ratio, s.speed, s.speed * s.ratio);
      }
      shown_[static_cast<size_t>(r)] = s.cls;
    }
  }
  // At most one change per window of reports (hysteresis); DD decides once per generation.
  const bool profile = spec_.has(StragglerRule::kProfile);
  if (!profile && !spec_.has(StragglerRule::kAdjustBatch)) return;  // kill_restart alone
  if (profile ? profiled_
              : windows_at_change_ >= 0 && monitor_.windows() - windows_at_change_ < spec_.window) {
    return;
  }
  const int64_t fair = std::max<int64_t>(1, global_batch_ / n);
  const int64_t lo = std::min(
      fair, spec_.min_batch > 0 ? spec_.min_batch : std::max<int64_t>(1, global_batch_ / (8 * n)));
  const int64_t hi =
      spec_.max_batch > 0 ? std::max(spec_.max_batch, (global_batch_ + n - 1) / n) : 0;
  const std::vector<double> speeds = monitor_.settled_speeds();
  std::vector<int64_t> rows;
  std::string reason;
  if (profile || monitor_.any_straggler()) {
    rows = ProportionalShares(std::max<int64_t>(global_batch_, n), speeds, lo, hi);
    reason = profile ? "profiled speeds" : "a straggler";
  } else {
    // Back to the equal split in two moves: halfway first. Under real contention a rank's speed
    // depends on its part (a smaller part computes in shorter bursts, which the scheduler favours),
    // so a straggler may look cleared only because its part is small; the half step shows it.
    rows = EqualPlan(global_batch_, n, generation_).rows;
    std::vector<double> halfway(rows.size());
    bool far = false;  // one half step, then the rest
    for (size_t i = 0; i < rows.size(); ++i) {
      halfway[i] = static_cast<double>(rows[i] + plan_.rows[i]) / 2;
      far = far || (!halfway_ && std::abs(plan_.rows[i] - rows[i]) > 2);
    }
    if (far) rows = ProportionalShares(std::max<int64_t>(global_batch_, n), halfway, 1, 0);
    reason = far ? "no straggler, halfway back" : "no straggler";
  }
  std::vector<int64_t> micro = MicroCaps(rows, profile ? spec_.micro_batch : 0);
  // The profile is decided once it acts, or once 4 windows of samples showed nothing worth a
  // change (a gain hidden by the noise of the first window is looked for again).
  if (profile && monitor_.settled_samples() >= static_cast<size_t>(4 * spec_.window)) {
    profiled_ = true;
  }
  if (rows == plan_.rows && micro == plan_.micro) return;
  const double now = PredictedStepMs(plan_.rows, speeds), next = PredictedStepMs(rows, speeds);
  // A gain within twice the speeds' standard error may be noise: the slowest of several noisy
  // estimates always looks slower than their balance. Leaving the equal split takes a gain;
  // going back to it once no straggler is left only takes not being clearly worse (per-row
  // speeds make a rank with a small part look slower than it is: see docs/train.md).
  const double noise = 2 * monitor_.settled_error();
  const bool revert = !profile && !monitor_.any_straggler();
  const double bar = revert ? 1.0 + spec_.min_gain + noise : 1.0 - spec_.min_gain - noise;
  if (next > bar * now) return;
  Publish(std::move(rows), std::move(micro),
          fmt::format("{}: predicted compute {:.1f} -> {:.1f} ms a step", reason, now, next));
  windows_at_change_ = monitor_.windows();
  profiled_ = profile;
  halfway_ = plan_.reason.starts_with("no straggler, halfway");
  monitor_.MarkChange();
}

void StragglerPolicy::Publish(std::vector<int64_t> rows, std::vector<int64_t> micro,
                              std::string reason) {
  plan_.version = ++version_;
  plan_.generation = generation_;
  plan_.rows = std::move(rows);
  plan_.micro = std::move(micro);
  plan_.reason = std::move(reason);
  host_.SetJobValue(kBatchPlanKey, EncodeBatchPlan(plan_));
  spdlog::info("straggler: batch plan v{} for generation {}: rows {}{} ({})", plan_.version,
               plan_.generation, Rows(plan_.rows),
               std::any_of(plan_.micro.begin(), plan_.micro.end(), [](int64_t m) { return m > 0; })
                   ? ", micro-batches " + Rows(plan_.micro)
                   : "",
               plan_.reason);
}

}  // namespace baton::train
