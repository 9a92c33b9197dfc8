// The `train.straggler:` section: which of AntDT's rules the master's controller runs for a
// training job, how its monitor detects stragglers, and (for tests and benchmarks only) stragglers
// to inject. docs/train.md documents every key for users; defaults are stated next to each field.
//
//   straggler:
//     rules: [adjust_batch]   # adjust_batch, kill_restart (ND), profile (DD); default: none
//     window: 4               # reports per rank in the speed window
//     inject: [{rank: 1, slowdown: 3}]
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "spec/schema_reader.h"

namespace baton::train {

enum class StragglerRule {
  // AntDT-ND: per-rank batch in proportion to measured speed while a straggler is flagged, back to
  // the equal split when it clears; acts only on a predicted gain, at most once per window.
  kAdjustBatch,
  // AntDT-DD: profile every rank's speed over the first window of a generation, then a fixed
  // proportional split, each rank's part run in micro-batches of at most micro_batch rows.
  kProfile,
  // AntDT-ND: a straggler flagged for persistent_after_s whose predicted saving over the rest of
  // the job beats restart_margin x the cost of a restart: its node's workers move to a spare node
  // (the spec's spare_nodes), never back to a node emptied before (anti-affinity to slow hosts).
  kKillRestart,
};

// A slowdown the worker imposes on itself (testing and benchmarks): after its compute, the rank
// sleeps (slowdown - 1) x the time that compute took, so its compute takes `slowdown` x as long
// whatever its batch. Active from start_s after the worker started for on_s (0: for ever), again
// every period_s (0: once): a transient straggler comes and goes. It applies to one generation
// rank, or to every worker of one node (a slow host: its workers stay slow whatever their rank,
// and a worker moved off the node is not).
struct InjectedSlowdown {
  int rank = -1;     // the generation rank it applies to; -1: see node
  std::string node;  // the node whose workers it applies to (when rank is -1)
  double slowdown = 1;
  double start_s = 0;
  double on_s = 0;
  double period_s = 0;
  // Whether it is active `seconds` after the worker started.
  bool ActiveAt(double seconds) const;
};

struct StragglerSpec {
  std::vector<StragglerRule> rules;  // empty (default): no policy, the equal split throughout
  // Monitor (papers/antdt.md §6.1). A rank's speed is the median over its last `window` samples
  // (one per master monitor tick, 200 ms) of rows per compute millisecond; it is flagged when the
  // peers' median speed is more than `threshold` x its own, a straggler after `confirm` flagged
  // windows in a row, and cleared after as many unflagged ones. Flagged for persistent_after_s or
  // more: persistent, else transient; flagged since the generation's first window with a steady
  // ratio: deterministic. Defaults 4, 1.3, 3, 300 s.
  int32_t window = 4;
  // How often each rank sends its running totals of rows and compute time to the master (its
  // gauges' period), in ms: at most this stale at each monitor tick. Default 100.
  int32_t report_ms = 100;
  double threshold = 1.3;
  int32_t confirm = 3;
  double persistent_after_s = 300;
  // adjust_batch and profile: act only when the new split predicts a step at least min_gain
  // faster (default 0.05); parts stay within [min_batch, max_batch] (defaults: max(1, B/(8N)) and
  // none).
  double min_gain = 0.05;
  int64_t min_batch = 0;
  int64_t max_batch = 0;
  // profile: the largest micro-batch a rank runs in one pass (its memory limit); 0 (default): a
  // rank's whole part in one pass.
  int64_t micro_batch = 0;
  // Relative speeds (1e-6..1e6) of the ranks when they are known in advance (dedicated,
  // heterogeneous hardware): a generation of exactly this many ranks starts from shares in
  // proportion to them (and micro_batch) at its first step, before any measurement. Empty
  // (default): the equal split.
  std::vector<double> speeds;
  // kill_restart (papers/antdt.md §6.4): act when T_rem x (1 - S_without / S_now) > restart_margin
  // x C, where T_rem is the predicted rest of the job, S the predicted step time with and without
  // the straggler, and C the cost of a restart: restart_cost_s until one was measured (from the
  // action to the first report of the full-size generation that follows it). At most
  // restarts_per_hour moves in any hour (counted since the master started), one at a time.
  // Defaults 2, 30 s, 5.
  double restart_margin = 2;
  double restart_cost_s = 30;
  int32_t restarts_per_hour = 5;
  // Testing and benchmarks only.
  std::vector<InjectedSlowdown> inject;
  // Emulated compute (benchmarks at a scale the machine cannot hold): after its real forward and
  // backward, a rank sleeps rows x this many microseconds (x its injected slowdown). 0: off.
  double emulate_us_per_sample = 0;

  bool on() const { return !rules.empty(); }
  bool has(StragglerRule rule) const;
};

// The keys of train.straggler, for the spec's schema.
std::span<const std::string_view> StragglerKeys();

// Reads `train.straggler` from the (already opened) train section into `out`, recording problems
// in `r`; `global_batch` bounds min_batch and max_batch.
void ReadStragglerSpec(schema::Reader& r, const schema::Section& train, int64_t global_batch,
                       StragglerSpec* out);
// The master's view: reads only train.global_batch and train.straggler of the spec at `path`
// (the worker's preflight has checked the rest). InvalidArgument lists the problems.
Result<StragglerSpec> LoadStragglerSpec(const std::string& path, int64_t* global_batch);

// Testing and benchmarks: the time `rank` (a worker of `node`) sleeps after a compute of
// `compute_ms` over `rows` rows, `seconds` after its worker started: (slowdown - 1) x compute_ms
// for an active injection, plus the emulated compute rows x emulate_us_per_sample (x the slowdown).
// 0 when nothing applies.
double InjectedDelayMs(const StragglerSpec& spec, int rank, std::string_view node, double seconds,
                       double compute_ms, int64_t rows);

}  // namespace baton::train
