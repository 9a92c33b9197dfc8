// Bounds on what a client may send the master. Every RPC handler checks its request against these
// before it touches any state, so a buggy or hostile client holding the job token cannot grow the
// master's memory, its status reply or its log without limit, or forge log lines: it gets
// INVALID_ARGUMENT naming the field and the limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/job_limits.h"
#include "common/status.h"

namespace baton::master {

// A node id: 1..128 bytes of [A-Za-z0-9._:@-] (what host names and pod names use).
inline constexpr size_t kMaxNodeIdBytes = 128;
// Nodes one job may register over its life.
inline constexpr size_t kMaxNodes = 4096;
// Workers per node: kMaxWorkersPerNode (common/job_limits.h); local ranks are 0..that-1.
// Host names are only logged and shown; longer ones are cut.
inline constexpr size_t kMaxHostnameBytes = 255;
// Leases named in one RenewLeases call.
inline constexpr int kMaxLeasesPerRenewal = 4096;
// Named counters one worker may report (ReportProgressRequest.counters), and a name's length.
inline constexpr int kMaxCountersPerWorker = 64;
inline constexpr size_t kMaxCounterNameBytes = 64;

Status CheckNodeId(std::string_view field, std::string_view node_id);
// A worker id is "<node_id>/<local_rank>" with local_rank in [0, kMaxWorkersPerNode).
Status CheckWorkerId(std::string_view field, std::string_view worker_id);
// A counter name: 1..kMaxCounterNameBytes bytes of [A-Za-z0-9._:-].
Status CheckCounterName(std::string_view name);

}  // namespace baton::master
