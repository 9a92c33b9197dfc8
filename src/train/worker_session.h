// What every training-kind worker program (baton-train-worker, baton-meta-worker) does around its
// trainer: its identity from the agent's environment, the SDK worker and rendezvous connections,
// the trainer's checkpoint options from its spec, and SIGTERM turned into the trainer's stop
// flag (the agent stops workers with SIGTERM, then SIGKILL after worker.stop_grace_ms: the
// trainer leaves between steps, so the summary and the memory slots' removal are not cut off).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "sdk/rendezvous.h"
#include "sdk/worker.h"
#include "train/train_spec.h"
#include "train/trainer.h"

namespace baton::train {

struct WorkerSession {
  sdk::WorkerIdentity identity;
  std::unique_ptr<sdk::Worker> worker;
  std::unique_ptr<sdk::Rendezvous> rendezvous;
  TrainerOptions options;  // checkpoint and stop set; the rest is the caller's
};

// The identity the agent gave the program (its BATON_* environment), or an InvalidArgument
// saying to run it through `baton run` (or --check).
Result<sdk::WorkerIdentity> WorkerIdentityOrHint();

// Connects `identity` and logs as "[time] [TAG worker-id]"; the connections' errors. `state_dir`
// is the job's master.state_dir (the default checkpoint directory is under it).
Result<WorkerSession> StartWorkerSession(const sdk::WorkerIdentity& identity, std::string_view tag,
                                         const TrainSpec& spec, const std::string& state_dir);

// The worker's exit status for its trainer's result: 0, kExitBadJob for InvalidArgument (the
// agent does not restart it), 1 otherwise. Logs the error.
int WorkerExitCode(const Status& result);

}  // namespace baton::train
