// Bounds on what a job may ask for, shared by every place a request enters: the job spec
// (worker.per_node), `baton scale`, the master's ScaleWorkers RPC and the agent's
// SET_WORKER_COUNT action and registration. Each of them refuses a value out of range with a
// message naming the bound, so no component ever tries to allocate or spawn for an absurd count.
#pragma once

#include <cstdint>

namespace baton {

// Worker processes one agent may run at once. Far above the cores of any node, far below what
// would exhaust an agent's memory or the machine's process table.
inline constexpr int32_t kMaxWorkersPerNode = 1024;

}  // namespace baton
