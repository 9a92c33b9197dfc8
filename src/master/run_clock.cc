#include "master/run_clock.h"

#include "common/clock.h"

namespace baton::master {

RunClock::RunClock(int64_t tick_period_ms)
    : period_ms_(tick_period_ms), last_tick_ms_(MonoMillis()) {}

int64_t RunClock::Now() const { return MonoMillis() - paused_ms_.load(); }

int64_t RunClock::Tick() {
  int64_t now = MonoMillis();
  int64_t gap = now - last_tick_ms_;
  last_tick_ms_ = now;
  if (gap <= period_ms_ + kSlackMs) return 0;
  int64_t paused = gap - period_ms_;
  paused_ms_.fetch_add(paused);
  return paused;
}

}  // namespace baton::master
