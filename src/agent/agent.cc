#include "agent/agent.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <memory>
#include <optional>
#include <thread>

#include <spdlog/spdlog.h>

#include "agent/supervisor.h"
#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/job_limits.h"
#include "common/process_stats.h"
#include "common/worker_env.h"

namespace baton::agent {
namespace {

namespace pb = ::baton::v1;

pb::WorkerPhase ToProto(WorkerPhase phase) {
  switch (phase) {
    case WorkerPhase::kRunning:
      return pb::WORKER_PHASE_RUNNING;
    case WorkerPhase::kBackoff:
      return pb::WORKER_PHASE_BACKOFF;
    case WorkerPhase::kFinished:
      return pb::WORKER_PHASE_FINISHED;
    case WorkerPhase::kGaveUp:
      return pb::WORKER_PHASE_GAVE_UP;
    case WorkerPhase::kStopped:
      return pb::WORKER_PHASE_STOPPED;
  }
  return pb::WORKER_PHASE_UNSPECIFIED;
}

pb::ExitKind ToProto(ExitKind kind) {
  switch (kind) {
    case ExitKind::kExited:
      return pb::EXIT_KIND_EXITED;
    case ExitKind::kSignaled:
      return pb::EXIT_KIND_SIGNALED;
    case ExitKind::kOomKilled:
      return pb::EXIT_KIND_OOM_KILLED;
  }
  return pb::EXIT_KIND_UNSPECIFIED;
}

bool Retryable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

// One agent run. Everything happens on the caller's thread; the Supervisor is stepped from the
// same loop that heartbeats, so no state is shared between threads.
class Agent {
 public:
  Agent(const AgentOptions& options, const std::atomic<bool>& stop)
      : o_(options),
        stop_(stop),
        address_(options.master_address),
        unreachable_(options.master_unreachable.value_or(kDefaultMasterUnreachable)) {
    Connect();
    last_contact_ms_ = MonoMillis();
  }

  Status Run() {
    BATON_RETURN_IF_ERROR(Register());
    if (stop_) return StopAndReturnOk("stop requested");
    next_heartbeat_ms_ = MonoMillis();  // report the fresh workers at once
    Backoff heartbeat_backoff(o_.retry_backoff);
    while (true) {
      if (stop_) return StopAndReturnOk("stop requested");
      for (auto& e : supervisor_->Poll()) exits_.push_back(e);
      FlushExits();

      if (MonoMillis() >= next_heartbeat_ms_) {
        pb::HeartbeatReply reply;
        Status s = Heartbeat(reply);
        if (s.ok()) {
          heartbeat_backoff.Reset();
          next_heartbeat_ms_ = MonoMillis() + heartbeat_interval_.count();
          if (reply.reregister()) {
            spdlog::info("[{}] master asked to register again (it restarted)", o_.node_id);
            BATON_RETURN_IF_ERROR(Register());
          }
          std::optional<Status> done = RunActions(reply);
          if (done) return *done;
        } else if (s.code() == StatusCode::kPermissionDenied) {
          Shutdown(false, "token refused");
          return s.WithContext("heartbeat");
        } else if (s.code() == StatusCode::kNotFound) {
          BATON_RETURN_IF_ERROR(Register());  // a master that forgot us: same as reregister
        } else {
          BATON_RETURN_IF_ERROR(CheckUnreachable(s));
          auto delay = std::min(heartbeat_backoff.Next(), heartbeat_interval_);
          next_heartbeat_ms_ = MonoMillis() + delay.count();
        }
      }

      if (supervisor_->AllFinished()) {
        spdlog::info("[{}] every worker finished", o_.node_id);
        FinalReport();
        return Status::Ok();
      }
      if (supervisor_->worker_count() > 0 && supervisor_->AllTerminal() &&
          supervisor_->CountInPhase(WorkerPhase::kGaveUp) > 0) {
        int gave_up = supervisor_->CountInPhase(WorkerPhase::kGaveUp);
        spdlog::error("[{}] no worker left running; {} gave up", o_.node_id, gave_up);
        FinalReport();
        return Status::FailedPrecondition(std::to_string(gave_up) +
                                          " worker(s) spent their restart budget and gave up");
      }
      int64_t wait = std::min<int64_t>(o_.poll_interval.count(),
                                       std::max<int64_t>(1, next_heartbeat_ms_ - MonoMillis()));
      std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    }
  }

 private:
  void Connect() { stub_ = pb::NodeService::NewStub(MakeChannel(address_)); }

  // Deadline of one call: never longer than the agent is willing to wait for the master at all.
  std::chrono::milliseconds Deadline() const { return std::min(o_.rpc_deadline, unreachable_); }

  // Follows a master that came back at another address (written by whoever restarted it).
  void MaybeReloadAddress() {
    if (o_.master_address_file.empty()) return;
    std::ifstream in(o_.master_address_file);
    std::string addr;
    if (!(in >> addr) || addr == address_) return;
    spdlog::info("[{}] master address changed: {} -> {}", o_.node_id, address_, addr);
    address_ = addr;
    Connect();
  }

  // Called after a retryable failure: an error once the master has been silent too long.
  Status CheckUnreachable(const Status& last) {
    MaybeReloadAddress();
    if (MonoMillis() - last_contact_ms_ <= unreachable_.count()) return Status::Ok();
    spdlog::error("[{}] master {} unreachable for {} ms: stopping workers", o_.node_id, address_,
                  unreachable_.count());
    Shutdown(false, "master unreachable");
    return Status::Unavailable("master " + address_ + " unreachable for " +
                               std::to_string(unreachable_.count()) + " ms: " + last.ToString());
  }

  // Sleeps up to `delay`, waking early when `stop` is set.
  void SleepUnlessStopped(std::chrono::milliseconds delay) {
    const int64_t until = MonoMillis() + delay.count();
    while (!stop_ && MonoMillis() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(
          std::clamp<int64_t>(until - MonoMillis(), 1, o_.poll_interval.count())));
    }
  }

  Status Register() {
    Backoff backoff(o_.retry_backoff);
    while (!stop_) {
      pb::RegisterNodeRequest req;
      req.set_node_id(o_.node_id);
      req.set_hostname(o_.hostname.empty() ? Hostname() : o_.hostname);
      req.set_agent_pid(getpid());
      req.set_spare(o_.spare);
      pb::RegisterNodeReply reply;
      grpc::ClientContext ctx;
      PrepareContext(ctx, o_.token, Deadline());
      Status s = FromGrpc(stub_->RegisterNode(&ctx, req, &reply));
      if (s.ok()) {
        last_contact_ms_ = MonoMillis();
        return Apply(reply);
      }
      if (!Retryable(s)) {
        if (supervisor_) Shutdown(false, "registration refused");
        return s.WithContext("register node " + o_.node_id + " with " + address_);
      }
      // Workers keep being supervised while we wait for the master to come back.
      if (supervisor_) {
        for (auto& e : supervisor_->Poll()) exits_.push_back(e);
      }
      BATON_RETURN_IF_ERROR(CheckUnreachable(s));
      spdlog::warn("[{}] register: {} (retrying)", o_.node_id, s.ToString());
      SleepUnlessStopped(backoff.Next());
    }
    return Status::Ok();  // stop requested; the caller notices `stop`
  }

  // Takes the registration reply. An error only for a first registration the agent cannot run.
  Status Apply(const pb::RegisterNodeReply& reply) {
    heartbeat_interval_ = reply.heartbeat_interval_ms() > 0
                              ? std::chrono::milliseconds(reply.heartbeat_interval_ms())
                              : o_.default_heartbeat_interval;
    // The job's own patience with an unreachable master, unless this agent was given one.
    if (!o_.master_unreachable && reply.master_unreachable_ms() > 0) {
      unreachable_ = std::chrono::milliseconds(reply.master_unreachable_ms());
    }
    if (supervisor_) {
      if (reply.node_rank() != node_rank_) {
        spdlog::warn("[{}] master now says node rank {} (was {}); running workers keep {}",
                     o_.node_id, reply.node_rank(), node_rank_, node_rank_);
      }
      spdlog::info("[{}] registered again with {}", o_.node_id, address_);
      // A scale or a move the restarted master took before this agent was back reaches it only
      // here.
      const int32_t count = reply.node_workers();
      if (count != supervisor_->worker_count()) {
        spdlog::info("[{}] the master now asks for {} worker(s)", o_.node_id, count);
        if (Status s = supervisor_->SetWorkerCount(count); !s.ok()) {
          spdlog::warn("[{}] set worker count refused: {}", o_.node_id, s.ToString());
        }
      }
      return Status::Ok();
    }
    const int32_t count = reply.node_workers();
    if (count < 0 || count > kMaxWorkersPerNode) {
      return Status::InvalidArgument("the master asks for " + std::to_string(count) +
                                     " workers on this node; at most " +
                                     std::to_string(kMaxWorkersPerNode) + " are allowed");
    }
    job_id_ = reply.job_id();
    node_rank_ = reply.node_rank();
    launch_ = reply.launch();
    spdlog::info("[{}] registered with {}: job {}, node rank {}, {} worker(s){}", o_.node_id,
                 address_, job_id_, node_rank_, count, o_.spare ? " (spare)" : "");
    SupervisorOptions so;
    so.argv.assign(launch_.argv().begin(), launch_.argv().end());
    so.env.insert(launch_.env().begin(), launch_.env().end());
    so.working_dir = launch_.working_dir();
    so.restart_budget = launch_.restart_budget();
    if (launch_.restart_backoff_ms() > 0) {
      so.restart_backoff = std::chrono::milliseconds(launch_.restart_backoff_ms());
    }
    if (launch_.restart_backoff_max_ms() > 0) {
      so.restart_backoff_max = std::chrono::milliseconds(launch_.restart_backoff_max_ms());
    }
    if (launch_.stop_grace_ms() > 0)
      so.stop_grace = std::chrono::milliseconds(launch_.stop_grace_ms());
    so.oom_events_path = o_.oom_events_path;
    so.log_prefix = "[" + o_.node_id + "] ";
    so.worker_env = [this](int rank) { return WorkerEnv(rank); };
    supervisor_ = std::make_unique<Supervisor>(std::move(so));
    return supervisor_->SetWorkerCount(count);
  }

  std::map<std::string, std::string> WorkerEnv(int local_rank) const {
    const int global = node_rank_ * launch_.workers_per_node() + local_rank;
    return {
        {env::kJobId, job_id_},
        {env::kNodeId, o_.node_id},
        {env::kNodeRank, std::to_string(node_rank_)},
        {env::kLocalRank, std::to_string(local_rank)},
        {env::kGlobalRank, std::to_string(global)},
        {env::kWorkerId, o_.node_id + "/" + std::to_string(local_rank)},
        {env::kMasterAddr, address_},
        {env::kToken, o_.token},
        {env::kAgentPid, std::to_string(getpid())},
        {env::kMasterUnreachableMs, std::to_string(unreachable_.count())},
    };
  }

  Status Heartbeat(pb::HeartbeatReply& reply) {
    pb::HeartbeatRequest req;
    req.set_node_id(o_.node_id);
    for (const auto& w : supervisor_->Workers()) {
      auto* r = req.add_workers();
      r->set_local_rank(w.local_rank);
      r->set_pid(w.pid);
      r->set_phase(ToProto(w.phase));
      r->set_restarts(w.restarts);
      if (w.pid > 0) {
        ProcessStats stats = ReadProcessStats(w.pid);
        r->set_cpu_seconds(stats.cpu_seconds);
        r->set_rss_bytes(stats.rss_bytes);
      }
    }
    grpc::ClientContext ctx;
    PrepareContext(ctx, o_.token, Deadline());
    Status s = FromGrpc(stub_->Heartbeat(&ctx, req, &reply));
    if (s.ok()) {
      last_contact_ms_ = MonoMillis();
    } else {
      spdlog::warn("[{}] heartbeat: {}", o_.node_id, s.ToString());
    }
    return s;
  }

  // Runs the reply's actions in order; a value means the agent is done and returns it.
  std::optional<Status> RunActions(const pb::HeartbeatReply& reply) {
    for (const auto& a : reply.actions()) {
      switch (a.kind()) {
        case pb::Action::KIND_RESTART_WORKER: {
          spdlog::info("[{}] action: restart worker {} ({})", o_.node_id, a.local_rank(),
                       a.reason());
          Status s = supervisor_->RestartWorker(a.local_rank());
          if (!s.ok()) spdlog::warn("[{}] restart worker: {}", o_.node_id, s.ToString());
          break;
        }
        case pb::Action::KIND_SET_WORKER_COUNT: {
          spdlog::info("[{}] action: {} worker(s) ({})", o_.node_id, a.worker_count(), a.reason());
          Status s = supervisor_->SetWorkerCount(a.worker_count());
          if (!s.ok()) spdlog::warn("[{}] set worker count refused: {}", o_.node_id, s.ToString());
          break;
        }
        case pb::Action::KIND_STOP:
          spdlog::info("[{}] action: stop ({})", o_.node_id, a.reason());
          return StopAndReturnOk("stop action");
        default:
          spdlog::warn("[{}] ignoring unknown action kind {}", o_.node_id,
                       static_cast<int>(a.kind()));
      }
    }
    return std::nullopt;
  }

  // Sends queued exit reports, one attempt each; keeps those that failed retryably for later.
  // The master treats a duplicate report harmlessly, so a retry after a lost reply is safe.
  void FlushExits() {
    while (!exits_.empty()) {
      const ExitEvent& e = exits_.front();
      pb::ReportExitRequest req;
      req.set_node_id(o_.node_id);
      req.set_local_rank(e.local_rank);
      req.set_pid(e.pid);
      req.set_kind(ToProto(e.kind));
      req.set_exit_code(e.exit_code);
      req.set_signal(e.signal);
      req.set_will_restart(e.will_restart);
      req.set_restarts(e.restarts);
      pb::ReportExitReply reply;
      grpc::ClientContext ctx;
      PrepareContext(ctx, o_.token, Deadline());
      Status s = FromGrpc(stub_->ReportExit(&ctx, req, &reply));
      if (Retryable(s)) return;  // the heartbeat path tracks how long the master is gone
      if (!s.ok()) {
        spdlog::warn("[{}] exit report of worker {} refused: {}", o_.node_id, e.local_rank,
                     s.ToString());
      } else {
        last_contact_ms_ = MonoMillis();
      }
      exits_.pop_front();
    }
  }

  // Last words before returning: outstanding exit reports and one heartbeat with final phases.
  // Bounded by the unreachable window, so a vanished master cannot hold the agent forever.
  void FinalReport() {
    Backoff backoff(o_.retry_backoff);
    const int64_t give_up = MonoMillis() + unreachable_.count();
    FlushExits();
    while (!exits_.empty() && !stop_ && MonoMillis() < give_up) {
      SleepUnlessStopped(backoff.Next());
      MaybeReloadAddress();
      FlushExits();
    }
    pb::HeartbeatReply ignored;
    (void)Heartbeat(ignored);
  }

  // Stops every worker gracefully and reports their exits when the master can hear them.
  void Shutdown(bool report, const char* why) {
    if (!supervisor_) return;
    spdlog::info("[{}] stopping workers: {}", o_.node_id, why);
    for (auto& e : supervisor_->StopAllAndWait()) exits_.push_back(e);
    if (report) FinalReport();
  }

  // Stops the workers and reports; the agent's run then ends with OK.
  Status StopAndReturnOk(const char* why) {
    Shutdown(true, why);
    return Status::Ok();
  }

  const AgentOptions& o_;
  const std::atomic<bool>& stop_;
  std::string address_;
  std::chrono::milliseconds unreachable_;  // see AgentOptions::master_unreachable
  std::unique_ptr<pb::NodeService::Stub> stub_;
  int64_t last_contact_ms_ = 0;
  int64_t next_heartbeat_ms_ = 0;
  std::chrono::milliseconds heartbeat_interval_{1000};
  std::string job_id_;
  int node_rank_ = 0;
  pb::WorkerLaunch launch_;
  std::unique_ptr<Supervisor> supervisor_;
  std::deque<ExitEvent> exits_;
};

}  // namespace

Status RunAgent(const AgentOptions& options, const std::atomic<bool>& stop) {
  if (options.node_id.empty()) return Status::InvalidArgument("agent needs a node id");
  if (options.master_address.empty() && options.master_address_file.empty()) {
    return Status::InvalidArgument("agent needs a master address");
  }
  AgentOptions resolved = options;
  if (resolved.master_address.empty()) {
    std::ifstream in(resolved.master_address_file);
    if (!(in >> resolved.master_address)) {
      return Status::NotFound("no master address in " + resolved.master_address_file);
    }
  }
  Agent agent(resolved, stop);
  return agent.Run();
}

}  // namespace baton::agent
