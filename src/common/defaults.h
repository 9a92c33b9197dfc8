// The defaults of knobs that more than one component reads: the job spec (src/launch/job_spec.h),
// the agent and its supervisor, and the worker SDK each take their value from here, so a process
// started by hand behaves as one started by `baton run` from a spec that leaves the key out.
// docs/job-spec.md documents each once, under its spec key.
#pragma once

#include <cstdint>

namespace baton::defaults {

// timeouts.master_unreachable_ms: agents and workers retry an unreachable master this long.
inline constexpr int64_t kMasterUnreachableMs = 120000;
// worker.restart_backoff_ms / restart_backoff_max_ms: the first restart delay, doubled per
// restart up to the cap.
inline constexpr int64_t kRestartBackoffMs = 500;
inline constexpr int64_t kRestartBackoffMaxMs = 10000;
// worker.stop_grace_ms: SIGTERM, then SIGKILL after this long.
inline constexpr int64_t kStopGraceMs = 5000;
// worker.restart_budget: crash restarts of one worker before its agent gives up on it.
inline constexpr int32_t kRestartBudget = 3;

}  // namespace baton::defaults
