#include "train/straggler/straggler_monitor.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace baton::train {
namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  const size_t mid = v.size() / 2;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid), v.end());
  if (v.size() % 2 == 1) return v[mid];
  const double upper = v[mid];
  const double lower = *std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(mid));
  return (lower + upper) / 2;
}

// Coefficient of variation (stddev / mean); 0 for fewer than two values.
double Variation(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - mean) * (x - mean);
  return std::sqrt(sq / static_cast<double>(v.size())) / mean;
}

// A deterministic straggler's ratio barely moves (papers/antdt.md §6.1).
constexpr double kSteadyVariation = 0.1;
// A window median this far from the settled one (relative) restarts the settled speed.
constexpr double kSettledShift = 0.2;
// Reports kept for the settled speeds: 6.4 s at the default 100 ms a report.
constexpr size_t kSettledReports = 64;

}  // namespace

std::string_view ClassName(StragglerClass c) {
  switch (c) {
    case StragglerClass::kNone:
      return "none";
    case StragglerClass::kTransient:
      return "transient";
    case StragglerClass::kPersistent:
      return "persistent";
    case StragglerClass::kDeterministic:
      return "deterministic";
  }
  return "none";
}

void StragglerMonitor::Reset(int world, int64_t /*now_ms*/) {
  ranks_.assign(static_cast<size_t>(std::max(0, world)), Rank{});
  states_.assign(ranks_.size(), RankState{});
  windows_ = 0;
}

void StragglerMonitor::Add(int rank, RankReport report) {
  if (rank < 0 || rank >= world() || !(report.rows > 0) || !(report.compute_ms > 0)) return;
  Rank& r = ranks_[static_cast<size_t>(rank)];
  r.ms_per_row.push_back(report.compute_ms / report.rows);
  while (r.ms_per_row.size() > static_cast<size_t>(spec_.window)) r.ms_per_row.pop_front();
  r.settled.push_back(report.compute_ms / report.rows);
  while (r.settled.size() > kSettledReports) r.settled.pop_front();
  r.fresh = true;
}

bool StragglerMonitor::WindowReady() const {
  if (ranks_.size() < 2) return false;  // one rank has no peers to straggle behind
  return std::all_of(ranks_.begin(), ranks_.end(), [&](const Rank& r) {
    return r.fresh && r.ms_per_row.size() >= static_cast<size_t>(spec_.window);
  });
}

const std::vector<RankState>& StragglerMonitor::Evaluate(int64_t now_ms) {
  std::vector<double> speed(ranks_.size());
  for (size_t i = 0; i < ranks_.size(); ++i) {
    Rank& r = ranks_[i];
    const double ms = Median({r.ms_per_row.begin(), r.ms_per_row.end()});
    speed[i] = ms > 0 ? 1.0 / ms : 0;
    r.fresh = false;
    // The rank's speed moved (a straggler came or went without changing its flag): its settled
    // speed starts again from the window rather than lag behind by half its history.
    const double settled = Median({r.settled.begin(), r.settled.end()});
    if (settled > 0 && std::abs(ms - settled) > kSettledShift * settled) {
      r.settled.assign(r.ms_per_row.begin(), r.ms_per_row.end());
    }
  }
  const bool first = windows_ == 0;
  bool changed = false;
  ++windows_;
  for (size_t i = 0; i < ranks_.size(); ++i) {
    Rank& r = ranks_[i];
    RankState& s = states_[i];
    // The others' median: with two ranks a k x slower one is k x slower than its peer (a median
    // over all would put it at 2k / (k + 1)).
    std::vector<double> others;
    for (size_t j = 0; j < ranks_.size(); ++j) {
      if (j != i) others.push_back(speed[j]);
    }
    const double peers = Median(std::move(others));
    s.speed = speed[i];
    s.ratio = speed[i] > 0 ? peers / speed[i] : 1;
    s.flagged = s.ratio > spec_.threshold;
    if (s.flagged) {
      if (r.flagged_run == 0) {
        s.flagged_since_ms = now_ms;
        r.flagged_from_start = first;
        r.ratios.clear();
      }
      ++r.flagged_run;
      r.clear_run = 0;
      r.ratios.push_back(s.ratio);
      if (r.flagged_run >= spec_.confirm && !s.straggler) s.straggler = changed = true;
    } else {
      if (!s.straggler) {  // `confirm` flagged windows in a row, or start again
        r.flagged_run = 0;
        s.flagged_since_ms = -1;
      }
      ++r.clear_run;
      if (r.clear_run >= spec_.confirm) {
        changed = changed || s.straggler;
        s.straggler = false;
        r.flagged_run = 0;
        s.flagged_since_ms = -1;
      }
    }
    if (!s.straggler) {
      s.cls = StragglerClass::kNone;
    } else if (r.flagged_from_start && Variation(r.ratios) < kSteadyVariation) {
      s.cls = StragglerClass::kDeterministic;
    } else if (static_cast<double>(now_ms - s.flagged_since_ms) >=
               spec_.persistent_after_s * 1000.0) {
      s.cls = StragglerClass::kPersistent;
    } else {
      s.cls = StragglerClass::kTransient;
    }
  }
  if (changed) MarkChange();
  return states_;
}

void StragglerMonitor::MarkChange() {
  for (Rank& r : ranks_) r.settled.assign(r.ms_per_row.begin(), r.ms_per_row.end());
}

std::vector<double> StragglerMonitor::settled_speeds() const {
  std::vector<double> v;
  for (const Rank& r : ranks_) {
    const double ms = Median({r.settled.begin(), r.settled.end()});
    v.push_back(ms > 0 ? 1.0 / ms : 0);
  }
  return v;
}

size_t StragglerMonitor::settled_samples() const {
  size_t fewest = ranks_.empty() ? 0 : kSettledReports;
  for (const Rank& r : ranks_) fewest = std::min(fewest, r.settled.size());
  return fewest;
}

double StragglerMonitor::settled_error() const {
  double worst = 0;
  for (const Rank& r : ranks_) {
    if (r.settled.empty()) continue;
    const double median = Median({r.settled.begin(), r.settled.end()});
    std::vector<double> dev;
    for (double x : r.settled) dev.push_back(std::abs(x - median));
    const double sigma = 1.4826 * Median(dev);
    worst = std::max(worst, sigma / median / std::sqrt(static_cast<double>(r.settled.size())));
  }
  return worst;
}

bool StragglerMonitor::any_straggler() const {
  return std::any_of(states_.begin(), states_.end(),
                     [](const RankState& s) { return s.straggler; });
}

}  // namespace baton::train
