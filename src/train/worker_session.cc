#include "train/worker_session.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>

namespace baton::train {
namespace {

std::atomic<bool> g_stop{false};

void OnTerm(int) { g_stop.store(true); }

}  // namespace

Result<sdk::WorkerIdentity> WorkerIdentityOrHint() {
  Result<sdk::WorkerIdentity> identity = sdk::WorkerIdentity::FromEnvironment();
  if (!identity.ok()) {
    return Status::InvalidArgument(identity.status().message() +
                                   " (run it through `baton run`, or use --check)");
  }
  return identity;
}

Result<WorkerSession> StartWorkerSession(const sdk::WorkerIdentity& identity, std::string_view tag,
                                         const TrainSpec& spec, const std::string& state_dir) {
  spdlog::set_pattern("[%H:%M:%S.%e] [" + std::string(tag) + " " + identity.worker_id + "] %v");
  WorkerSession session;
  session.identity = identity;
  BATON_ASSIGN_OR_RETURN(session.worker, sdk::Worker::Connect(session.identity));
  BATON_ASSIGN_OR_RETURN(session.rendezvous, sdk::Rendezvous::Connect(session.identity));
  CheckpointOptions& c = session.options.checkpoint;
  c.every_steps = spec.checkpoint_every_steps;
  c.dir = spec.checkpoint_dir.empty() ? state_dir + "/checkpoints" : spec.checkpoint_dir;
  c.memory_prefix = NodeMemoryPrefix(session.identity, c.dir);
  struct sigaction term {};
  term.sa_handler = OnTerm;
  sigemptyset(&term.sa_mask);
  ::sigaction(SIGTERM, &term, nullptr);
  session.options.stop = &g_stop;
  return session;
}

int WorkerExitCode(const Status& result) {
  if (result.ok()) return 0;
  spdlog::error("{}", result.ToString());
  return result.code() == StatusCode::kInvalidArgument ? kExitBadJob : 1;
}

}  // namespace baton::train
