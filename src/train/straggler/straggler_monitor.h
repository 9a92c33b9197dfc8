// StragglerMonitor: AntDT's Monitor for the ranks of one generation (papers/antdt.md §6.1). It
// keeps each rank's last `window` reports of rows and compute time per step (compute excludes
// the time blocked in the all-reduce: in synchronous training every rank's step time is the
// slowest one's), and when every rank has reported again it closes a window: a rank's speed is
// its median rows per compute millisecond, its ratio the other ranks' median speed over its own.
// Speeds are per row, so they stay comparable after the controller changes the split.
//
// A rank whose ratio exceeds the threshold is flagged in that window; `confirm` flagged windows
// in a row make it a straggler, as many unflagged ones clear it. A straggler is persistent once
// flagged for persistent_after_s, transient before; one flagged from the generation's first window
// with a steady ratio (coefficient of variation < 0.1) is deterministic, a property of its host.
// Pure arithmetic on what it is given (no clock, no I/O): the policy feeds it.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "train/straggler/straggler_spec.h"

namespace baton::train {

enum class StragglerClass { kNone = 0, kTransient = 1, kPersistent = 2, kDeterministic = 3 };
std::string_view ClassName(StragglerClass c);

// What a rank computed between two observations: rows through forward and backward, and the
// compute time they took (any interval; only their ratio is used).
struct RankReport {
  double rows = 0;
  double compute_ms = 0;
};

struct RankState {
  double speed = 0;        // rows per compute ms, median over the window
  double ratio = 1;        // the other ranks' median speed / this rank's (> 1: slower)
  bool flagged = false;    // in the last window
  bool straggler = false;  // confirmed
  StragglerClass cls = StragglerClass::kNone;
  int64_t flagged_since_ms = -1;  // when the current flagged run began; -1: not flagged
};

class StragglerMonitor {
 public:
  explicit StragglerMonitor(const StragglerSpec& spec) : spec_(spec) {}

  // A generation of `world` ranks started (at `now_ms`): windows and states start over.
  void Reset(int world, int64_t now_ms);
  int world() const { return static_cast<int>(ranks_.size()); }
  // One report of `rank`; ignored when it measured nothing (no rows or no compute time).
  void Add(int rank, RankReport report);
  // Whether a window can close: every rank has a full window and reported since the last close.
  bool WindowReady() const;
  // Closes a window at `now_ms` and returns every rank's state.
  const std::vector<RankState>& Evaluate(int64_t now_ms);
  const std::vector<RankState>& states() const { return states_; }
  // Each rank's speed over every report since the last change (a straggler confirmed or cleared,
  // its window's median 20 % away from it, or MarkChange), up to 64 reports: steadier than the
  // window's, for deciding a split.
  std::vector<double> settled_speeds() const;
  // The largest relative standard error of settled_speeds() over the ranks (1.4826 x median
  // absolute deviation / median / sqrt(reports)): how much of a predicted gain may be noise.
  double settled_error() const;
  // The fewest samples behind any rank's settled speed.
  size_t settled_samples() const;
  // The split changed: settled speeds start again from the current window.
  void MarkChange();
  bool any_straggler() const;
  // Windows closed in this generation.
  int64_t windows() const { return windows_; }

 private:
  struct Rank {
    std::deque<double> ms_per_row;  // the last `window` reports
    std::deque<double> settled;     // the reports since the last change, at most 64
    bool fresh = false;             // reported since the last window closed
    int flagged_run = 0, clear_run = 0;
    bool flagged_from_start = false;
    std::vector<double> ratios;  // while flagged, for the deterministic test
  };
  const StragglerSpec& spec_;
  std::vector<Rank> ranks_;
  std::vector<RankState> states_;
  int64_t windows_ = 0;
};

}  // namespace baton::train
