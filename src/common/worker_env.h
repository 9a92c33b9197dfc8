// The environment through which an agent hands a worker its identity. Workers read it with
// sdk::WorkerIdentity::FromEnvironment(); anything that starts workers sets all of it.
#pragma once

namespace baton::env {

inline constexpr const char* kJobId = "BATON_JOB_ID";
inline constexpr const char* kNodeId = "BATON_NODE_ID";
inline constexpr const char* kNodeRank = "BATON_NODE_RANK";
inline constexpr const char* kLocalRank = "BATON_LOCAL_RANK";
inline constexpr const char* kGlobalRank = "BATON_GLOBAL_RANK";  // node_rank * per_node + local
inline constexpr const char* kWorkerId = "BATON_WORKER_ID";      // "<node_id>/<local_rank>"
inline constexpr const char* kMasterAddr = "BATON_MASTER_ADDR";  // host:port
inline constexpr const char* kToken = "BATON_JOB_TOKEN";
// PID of the supervising agent. The SDK asks the kernel to kill the worker when this process dies
// (PR_SET_PDEATHSIG), so that a SIGKILLed agent leaves no orphan workers behind.
inline constexpr const char* kAgentPid = "BATON_AGENT_PID";
// How long the worker keeps retrying an unreachable master, in milliseconds.
inline constexpr const char* kMasterUnreachableMs = "BATON_MASTER_UNREACHABLE_MS";

}  // namespace baton::env
