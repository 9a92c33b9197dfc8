// The master's own running time: the clock that lease deadlines and node heartbeats are judged on.
//
// A master that does not run (SIGSTOP, a suspended VM, a host too starved to schedule it) cannot
// have heard renewals or heartbeats meanwhile, so that time must not count against workers and
// nodes: on waking it would otherwise expire every lease and declare every node dead, charging
// retry budgets for its own absence. The monitor ticks this clock every period; a gap between two
// ticks well beyond the period is time the master did not run, and it is left out from then on.
#pragma once

#include <atomic>
#include <cstdint>

namespace baton::master {

class RunClock {
 public:
  // `tick_period_ms`: how often the monitor calls Tick(). A gap longer than the period plus
  // `kSlackMs` counts as a pause (the slack absorbs ordinary scheduling delays on a busy host).
  explicit RunClock(int64_t tick_period_ms);

  static constexpr int64_t kSlackMs = 1000;

  // Milliseconds on a monotonic clock, less every pause noticed so far. Only differences matter.
  int64_t Now() const;
  // Called by the monitor at the start of each tick. Returns the pause it just noticed (the gap
  // beyond the period), 0 normally. Single caller.
  int64_t Tick();
  int64_t paused_ms() const { return paused_ms_.load(); }

 private:
  int64_t period_ms_;
  int64_t last_tick_ms_;  // raw monotonic time of the last tick; monitor thread only
  std::atomic<int64_t> paused_ms_{0};
};

}  // namespace baton::master
