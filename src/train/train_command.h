// The `baton train` command: `baton train plan JOB.yaml [--nodes N --per-node M --intra-gbps X
// --inter-gbps Y --memory-gb Z ...]` prints the sharding plan of a `kind: train` job
// (train/plan.h). The control plane stays free of torch: the command runs the job's worker
// program (`baton-train-worker --plan`), which loads the model.
#pragma once

#include <CLI/CLI.hpp>

namespace baton::train {

// Adds the `train` subcommand (with `plan`) to `app`. When it runs it replaces this process with
// the worker program, whose exit status is the command's: 0 with the plan printed, 2 for a bad
// spec or option (the message on stderr); if the program cannot be started it sets exit_code 1.
void AddTrainCommand(CLI::App& app, int& exit_code);

}  // namespace baton::train
