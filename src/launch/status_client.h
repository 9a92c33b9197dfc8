// Talking to a job's master from the outside: status (what `baton status` and `baton run` show)
// and scaling.
#pragma once

#include <chrono>
#include <string>

#include "baton/v1/baton.pb.h"
#include "common/status.h"

namespace baton::launch {

Result<v1::JobStatus> FetchStatus(const std::string& address, const std::string& token,
                                  std::chrono::milliseconds deadline = std::chrono::seconds(2));

// Asks every live node to run `workers_per_node` workers; returns how many nodes were told.
Result<int> ScaleWorkers(const std::string& address, const std::string& token,
                         int workers_per_node);

// One line: "done/total shards, records, rate, ETA".
std::string ProgressLine(const v1::JobStatus& st);
// A multi-line report for humans (nodes, workers with speed, dead letters).
std::string HumanStatus(const v1::JobStatus& st);
// The status as JSON (protobuf's canonical JSON mapping).
std::string JsonStatus(const v1::JobStatus& st);
const char* JobStateName(v1::JobState s);

}  // namespace baton::launch
