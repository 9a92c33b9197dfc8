#include "master/master_core.h"

#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/job_limits.h"
#include "common/safe_text.h"
#include "master/request_limits.h"

namespace baton::master {

MasterCore::MasterCore(JobSpec spec, std::string token, std::string job_id,
                       std::unique_ptr<StateStore> store, std::unique_ptr<Dds> dds,
                       std::unique_ptr<MetricsExporter> metrics, std::unique_ptr<RunClock> clock,
                       Restored restored)
    : spec_(std::move(spec)),
      token_(std::move(token)),
      job_id_(std::move(job_id)),
      store_(std::move(store)),
      dds_(std::move(dds)),
      metrics_(std::move(metrics)),
      output_(spec_.output.dir, spec_.output.suffix),
      registry_(spec_.timeouts.speed_window_ms),
      rendezvous_(RendezvousOptions{.timeout_ms = spec_.rendezvous.timeout_ms,
                                    .min_workers = spec_.rendezvous.min_workers},
                  *store_),
      workers_per_node_(spec_.worker.per_node),
      clock_(std::move(clock)),
      active_ms_before_(restored.active_ms),
      started_ms_(clock_->Now()),
      no_live_node_since_ms_(started_ms_) {
  registry_.RestoreRanks(restored.node_ranks);
}

Status MasterCore::StoreFailed(const Status& cause) {
  // The store cannot persist any more: answering would acknowledge what a restart would lose.
  // The failure is sticky (the store refuses all later writes), so the master must stop; the
  // monitor sees fatal() and shuts it down.
  {
    std::lock_guard<std::mutex> lock(fatal_mu_);
    if (fatal_.ok()) {
      fatal_ = cause;
      spdlog::critical("state store failed, the master stops: {}", cause.ToString());
    }
  }
  return Status::Unavailable("master cannot persist state: " + cause.message());
}

Status MasterCore::fatal() const {
  std::lock_guard<std::mutex> lock(fatal_mu_);
  return fatal_;
}

Status MasterCore::WaitDurable(uint64_t seq) {
  if (seq == 0) return Status::Ok();
  Status s = store_->WaitDurable(seq);
  return s.ok() ? s : StoreFailed(s);
}

void MasterCore::Complete(Status status, Deferred deferred,
                          std::function<void(const Status&)> finish) {
  if (!status.ok() || deferred.seq == 0) {
    if (status.ok() && deferred.then) status = deferred.then();
    finish(status);
    return;
  }
  store_->WhenDurable(deferred.seq, [this, then = std::move(deferred.then),
                                     finish = std::move(finish)](const Status& durable) {
    Status s = durable;
    if (!s.ok()) {
      s = StoreFailed(s);
    } else if (then) {
      s = then();
    }
    finish(s);
  });
}

Status MasterCore::RegisterNode(const v1::RegisterNodeRequest& req, v1::RegisterNodeReply* reply,
                                Deferred* d) {
  BATON_RETURN_IF_ERROR(CheckNodeId("node_id", req.node_id()));
  BATON_ASSIGN_OR_RETURN(Registry::Registration reg,
                         registry_.RegisterNode(req.node_id(), req.agent_pid(), clock_->Now(),
                                                kMaxNodes, req.spare()));
  int32_t rank = reg.rank;
  spdlog::info("node {} registered (rank {}, host {}, agent pid {})", req.node_id(), rank,
               SafeText(req.hostname(), kMaxHostnameBytes), req.agent_pid());
  // A rank is answered only once it is durable: a master restarted after this reply must give
  // the node the same rank (workers' global ranks are built from it).
  if (reg.new_rank) d->seq = store_->AppendNodeRank(req.node_id(), rank);
  // A spare's count of 0, durable before it is answered: re-registering with a restarted master
  // must not turn it into a working node.
  d->seq = std::max(d->seq, PersistNodeWorkers());
  if (reg.agent_replaced) {
    std::vector<LostLease> lost;
    uint64_t seq = dds_->RevokeWorkersWithPrefix(
        req.node_id() + "/", "agent of node " + req.node_id() + " was replaced", &lost);
    d->seq = std::max(d->seq, seq);
    d->seq = std::max(d->seq, rendezvous_.LeaveNode(req.node_id(),
                                                    "the agent of node " + req.node_id() +
                                                        " was replaced (its workers died)",
                                                    clock_->Now()));
    DiscardLost(lost);
    if (!lost.empty()) {
      spdlog::warn("node {} came back with a new agent: {} lease(s) of its old workers re-queued",
                   req.node_id(), lost.size());
    }
  }
  reply->set_job_id(job_id_);
  reply->set_node_rank(rank);
  reply->set_heartbeat_interval_ms(spec_.timeouts.heartbeat_interval_ms);
  reply->set_master_unreachable_ms(spec_.timeouts.master_unreachable_ms);
  v1::WorkerLaunch* l = reply->mutable_launch();
  for (const auto& a : spec_.worker.command) l->add_argv(a);
  for (const auto& [k, v] : spec_.worker.env) (*l->mutable_env())[k] = v;
  l->set_working_dir(spec_.base_dir);
  l->set_workers_per_node(workers_per_node_);  // the spec's, or what `baton scale` set since
  reply->set_node_workers(registry_.NodeWorkers(req.node_id()).value_or(workers_per_node_));
  l->set_restart_budget(spec_.worker.restart_budget);
  l->set_restart_backoff_ms(spec_.worker.restart_backoff_ms);
  l->set_restart_backoff_max_ms(spec_.worker.restart_backoff_max_ms);
  l->set_stop_grace_ms(spec_.worker.stop_grace_ms);
  if (finalized_) {
    v1::Action stop;
    stop.set_kind(v1::Action::KIND_STOP);
    stop.set_reason("job finished");
    registry_.QueueAction(req.node_id(), stop);
  }
  return Status::Ok();
}

Status MasterCore::Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatReply* reply) {
  BATON_RETURN_IF_ERROR(CheckNodeId("node_id", req.node_id()));
  if (req.workers_size() > kMaxWorkersPerNode) {
    return Status::InvalidArgument("a heartbeat may report at most " +
                                   std::to_string(kMaxWorkersPerNode) + " workers");
  }
  std::vector<v1::Action> actions;
  if (!registry_.Heartbeat(req, clock_->Now(), &actions)) {
    reply->set_reregister(true);
    return Status::Ok();
  }
  for (auto& a : actions) *reply->add_actions() = std::move(a);
  return Status::Ok();
}

Status MasterCore::ReportExit(const v1::ReportExitRequest& req, Deferred* d) {
  BATON_RETURN_IF_ERROR(CheckNodeId("node_id", req.node_id()));
  if (req.local_rank() < 0 || req.local_rank() >= kMaxWorkersPerNode) {
    return Status::InvalidArgument("local_rank must be in [0, " +
                                   std::to_string(kMaxWorkersPerNode) + ")");
  }
  registry_.RecordExit(req);
  std::string worker = req.node_id() + "/" + std::to_string(req.local_rank());
  std::string reason;
  switch (req.kind()) {
    case v1::EXIT_KIND_EXITED:
      reason = "exited with code " + std::to_string(req.exit_code());
      break;
    case v1::EXIT_KIND_SIGNALED:
      reason = "killed by signal " + std::to_string(req.signal());
      break;
    case v1::EXIT_KIND_OOM_KILLED:
      reason = "killed by the OOM killer";
      break;
    default:
      reason = "exited";
      break;
  }
  std::vector<LostLease> lost;
  d->seq = dds_->RevokeWorker(worker, "worker " + worker + " " + reason, &lost);
  if (!req.will_restart()) {
    std::lock_guard<std::mutex> lock(departed_mu_);
    departed_.insert(worker);
  }
  d->seq =
      std::max(d->seq, rendezvous_.Leave(worker, "worker " + worker + " " + reason, clock_->Now()));
  DiscardLost(lost);
  size_t revoked = lost.size();
  if (req.kind() != v1::EXIT_KIND_EXITED || req.exit_code() != 0 || revoked > 0) {
    spdlog::warn("worker {} (pid {}) {}; {} lease(s) re-queued{}", worker, req.pid(), reason,
                 revoked, req.will_restart() ? "; agent restarts it" : "");
  }
  return Status::Ok();
}

Status MasterCore::LeaseShard(const v1::LeaseShardRequest& req, v1::LeaseShardReply* reply,
                              Deferred* d) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", req.worker_id()));
  LeaseOutcome out = dds_->Lease(req.worker_id(), clock_->Now());
  FillLease(out, reply);
  d->seq = std::max(d->seq, out.seq);  // the reply goes out only once the lease is durable
  return Status::Ok();
}

void MasterCore::FillLease(const LeaseOutcome& out, v1::LeaseShardReply* reply) {
  switch (out.kind) {
    case LeaseOutcome::kEnd:
      reply->set_outcome(v1::LeaseShardReply::OUTCOME_END);
      return;
    case LeaseOutcome::kWait:
      reply->set_outcome(v1::LeaseShardReply::OUTCOME_WAIT);
      reply->set_retry_after_ms(
          std::min<int64_t>(1000, std::max<int64_t>(50, dds_->lease_ms() / 10)));
      return;
    case LeaseOutcome::kLeased:
      break;
  }
  const Shard& s = out.shard;
  reply->set_outcome(v1::LeaseShardReply::OUTCOME_LEASED);
  v1::ShardLease* l = reply->mutable_lease();
  l->set_shard_id(s.id);
  l->set_token(s.token);
  l->set_epoch(static_cast<int32_t>(s.epoch));
  l->set_attempt(s.attempts);
  l->set_lease_ms(dds_->lease_ms());
  v1::RecordRange* r = l->mutable_range();
  r->set_path(spec_.input.paths[s.range.file_index]);
  r->set_byte_begin(s.range.byte_begin);
  r->set_byte_end(s.range.byte_end);
  r->set_first_record(s.range.first_record);
  r->set_record_count(s.range.record_count);
  if (output_.enabled()) l->set_staging_path(output_.StagingPath(s.id, s.token));
}

Status MasterCore::RenewLeases(const v1::RenewLeasesRequest& req, v1::RenewLeasesReply* reply) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", req.worker_id()));
  if (req.leases_size() > kMaxLeasesPerRenewal) {
    return Status::InvalidArgument("a renewal may name at most " +
                                   std::to_string(kMaxLeasesPerRenewal) + " leases");
  }
  int64_t now = clock_->Now();
  for (const auto& ref : req.leases()) {
    auto* r = reply->add_renewals();
    r->set_shard_id(ref.shard_id());
    Result<int64_t> renewed = dds_->Renew(ref.shard_id(), ref.token(), req.worker_id(), now);
    r->set_renewed(renewed.ok());
    if (!renewed.ok()) r->set_reason(renewed.status().message());
  }
  reply->set_lease_ms(dds_->lease_ms());
  return Status::Ok();
}

Status MasterCore::CommitShard(const v1::CommitShardRequest& req, v1::CommitShardReply* reply,
                               Deferred* d) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", req.worker_id()));
  if (req.has_output() && !output_.enabled()) {
    return Status::InvalidArgument("commit carries output but the job has no output.dir");
  }
  // Every shard holds records, so a job with an output dir gets a part file for every shard (an
  // empty one when no record produced output): a commit without one would lose a part silently.
  if (!req.has_output() && output_.enabled()) {
    return Status::InvalidArgument("commit of shard " + std::to_string(req.shard_id()) +
                                   " carries no output, but the job writes output to " +
                                   spec_.output.dir +
                                   ": stage the shard's output (possibly empty)");
  }
  Result<Dds::CommitOutcome> out = dds_->Commit(req.shard_id(), req.token(), req.worker_id());
  if (!out.ok()) {
    if (out.status().code() == StatusCode::kFenced) {
      output_.Discard(req.shard_id(), req.token());  // the loser's attempt must never surface
      spdlog::warn("worker {}: {}", req.worker_id(), SafeText(out.status().message()));
    }
    return out.status();
  }
  // The DONE transition must be durable before the output is promoted: a crash in between leaves
  // a staged file that recovery promotes, never a promoted output for an unrecorded commit.
  d->seq = out->seq;
  d->then = [this, req, already = out->already_committed]() -> Status {
    if (req.has_output()) {
      Status promoted = output_.Promote(req.shard_id(), req.token());
      if (!promoted.ok()) {
        spdlog::error("shard {} committed but its output was not promoted: {}", req.shard_id(),
                      promoted.ToString());
        return promoted;
      }
    }
    if (!already) registry_.RecordCommit(req.worker_id(), req.records());
    return Status::Ok();
  };
  if (req.lease_next()) {
    v1::LeaseShardRequest next;
    next.set_worker_id(req.worker_id());
    BATON_RETURN_IF_ERROR(LeaseShard(next, reply->mutable_next(), d));
  }
  return Status::Ok();
}

Status MasterCore::FailShard(const v1::FailShardRequest& req, v1::FailShardReply* reply,
                             Deferred* d) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", req.worker_id()));
  // Stored and shown by `baton status`: valid UTF-8 without control characters, and capped here
  // (a byte cut inside the DDS could split a character).
  std::string reason =
      SafeText(req.reason(), static_cast<size_t>(std::max(16, spec_.failure.max_error_bytes)));
  Result<Dds::FailOutcome> out = dds_->Fail(req.shard_id(), req.token(), req.worker_id(),
                                            "worker " + req.worker_id() + ": " + reason);
  if (!out.ok()) return out.status();
  output_.Discard(req.shard_id(), req.token());
  if (out->dead_lettered) {
    spdlog::error("shard {} dead-lettered after its retry budget: {}", req.shard_id(), reason);
  } else {
    spdlog::warn("shard {} failed on {}: {}", req.shard_id(), req.worker_id(), reason);
  }
  reply->set_dead_lettered(out->dead_lettered);
  d->seq = out->seq;
  return Status::Ok();
}

Status MasterCore::ReportProgress(const v1::ReportProgressRequest& req) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", req.worker_id()));
  BATON_RETURN_IF_ERROR(CheckNodeId("node_id", req.node_id()));
  // Only workers of registered nodes are tracked (the set is bounded by kMaxNodes and
  // kMaxWorkersPerNode), and a worker reports for its own node.
  if (!req.worker_id().starts_with(req.node_id() + "/") || !registry_.KnownNode(req.node_id())) {
    return Status::FailedPrecondition("worker " + req.worker_id() + " is not a worker of a node " +
                                      "registered in this job");
  }
  if (req.counters_size() > kMaxCountersPerWorker) {
    return Status::InvalidArgument("a worker may report at most " +
                                   std::to_string(kMaxCountersPerWorker) + " counters");
  }
  for (const auto& [name, value] : req.counters()) BATON_RETURN_IF_ERROR(CheckCounterName(name));
  if (req.gauges_size() > kMaxCountersPerWorker) {
    return Status::InvalidArgument("a worker may report at most " +
                                   std::to_string(kMaxCountersPerWorker) + " gauges");
  }
  for (const auto& [name, value] : req.gauges()) {
    BATON_RETURN_IF_ERROR(CheckCounterName(name));
    if (!std::isfinite(value)) {
      return Status::InvalidArgument("gauge " + name + " is not a finite number");
    }
  }
  registry_.RecordProgress(req, clock_->Now());
  return Status::Ok();
}

v1::JobState MasterCore::State() const {
  if (!finalized_) return v1::JOB_STATE_RUNNING;
  DdsCounts c = dds_->Counts();
  if (c.dead == 0) return v1::JOB_STATE_SUCCEEDED;
  return spec_.failure.allow_partial ? v1::JOB_STATE_PARTIAL : v1::JOB_STATE_FAILED;
}

void MasterCore::SampleRate(int64_t now_ms) {
  std::lock_guard<std::mutex> lock(rate_mu_);
  rate_samples_.emplace_back(now_ms, dds_->Counts().records_done);
  while (rate_samples_.size() > 2 && rate_samples_.front().first < now_ms - 10000) {
    rate_samples_.pop_front();
  }
}

int64_t MasterCore::ActiveMillis() const {
  // A finished job's clock stops at its end.
  int64_t until = finalized_ ? finished_at_ms_.load() : clock_->Now();
  return active_ms_before_ + (until - started_ms_);
}

uint64_t MasterCore::PersistProgressMeta() {
  uint64_t seq = store_->AppendMeta("event_counters", Dds::EncodeEventCounters(dds_->Counts()));
  return std::max(seq, store_->AppendMeta("active_ms", std::to_string(ActiveMillis())));
}

void MasterCore::DiscardLost(const std::vector<LostLease>& lost) {
  for (const LostLease& l : lost) output_.Discard(l.shard_id, l.token);
}

void MasterCore::GetStatus(v1::JobStatus* st) {
  int64_t now = clock_->Now();
  DdsCounts c = dds_->Counts();
  st->set_job_id(job_id_);
  st->set_state(State());
  st->set_shards_total(c.total);
  st->set_shards_todo(c.todo);
  st->set_shards_doing(c.doing);
  st->set_shards_done(c.done);
  st->set_shards_dead(c.dead);
  st->set_records_total(c.records_total);
  st->set_records_done(c.records_done);
  st->set_leases_granted(c.leases_granted);
  st->set_leases_expired(c.leases_expired);
  st->set_commits_fenced(c.commits_fenced);
  st->set_requeues(c.requeues);
  st->set_worker_restarts(registry_.total_restarts());
  st->set_elapsed_s(static_cast<double>(ActiveMillis()) / 1000.0);
  st->set_output_dir(spec_.output.dir);
  double rate = 0;
  {
    std::lock_guard<std::mutex> lock(rate_mu_);
    if (rate_samples_.size() >= 2) {
      auto [t0, r0] = rate_samples_.front();
      auto [t1, r1] = rate_samples_.back();
      if (t1 > t0) rate = static_cast<double>(r1 - r0) * 1000.0 / static_cast<double>(t1 - t0);
    }
  }
  st->set_records_per_s(rate);
  uint64_t remaining = c.records_total - c.records_done;
  st->set_eta_s(remaining == 0 ? 0.0 : rate > 0 ? static_cast<double>(remaining) / rate : -1.0);
  registry_.FillStatus(st, now);
  for (const auto& d : dds_->DeadLetters(100)) {
    auto* dl = st->add_dead_letters();
    dl->set_shard_id(d.shard_id);
    dl->set_attempts(d.attempts);
    dl->set_last_error(d.last_error);
  }
}

Status MasterCore::ScaleWorkers(const v1::ScaleWorkersRequest& req, v1::ScaleWorkersReply* reply) {
  if (req.workers_per_node() < 0 || req.workers_per_node() > kMaxWorkersPerNode) {
    return Status::InvalidArgument("workers_per_node must be in 0.." +
                                   std::to_string(kMaxWorkersPerNode) + ", got " +
                                   std::to_string(req.workers_per_node()));
  }
  v1::Action a;
  a.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
  a.set_worker_count(req.workers_per_node());
  a.set_reason("scale requested");
  reply->set_nodes_notified(registry_.QueueActionForAll(a));
  if (workers_per_node_.exchange(req.workers_per_node()) != req.workers_per_node()) {
    // The planned membership changed: the survivors re-form at once with the new set (the new
    // workers are planned, so the next generation waits for them, not for a timeout). Both are
    // persisted with the next group commit; a master that dies first still has the old count,
    // and the new workers' joins end the generation it restores.
    (void)store_->AppendMeta(kWorkersPerNodeMetaKey, std::to_string(req.workers_per_node()));
    (void)PlanRendezvous(clock_->Now());
    (void)rendezvous_.End("scaled to " + std::to_string(req.workers_per_node()) +
                          " worker(s) per node");
  }
  return Status::Ok();
}

Status MasterCore::RestoreRendezvous(const std::map<std::string, std::string>& meta_values) {
  if (auto it = meta_values.find(kWorkersPerNodeMetaKey); it != meta_values.end()) {
    workers_per_node_ = static_cast<int32_t>(std::strtol(it->second.c_str(), nullptr, 10));
  }
  if (auto it = meta_values.find(kNodeWorkersMetaKey); it != meta_values.end()) {
    registry_.RestoreNodeWorkers(DecodeNodeWorkers(it->second));
  }
  return rendezvous_.Restore(meta_values);
}

Result<std::pair<int32_t, int32_t>> MasterCore::RendezvousCaller(const std::string& worker_id) {
  BATON_RETURN_IF_ERROR(CheckWorkerId("worker_id", worker_id));
  const size_t slash = worker_id.rfind('/');
  const std::string node = worker_id.substr(0, slash);
  std::optional<int32_t> rank = registry_.LiveNodeRank(node);
  if (!rank) {
    // Usually transient (a restarted master the agent has not re-registered with yet): the
    // SDK retries UNAVAILABLE.
    return Status::Unavailable("node " + node + " of worker " + worker_id +
                               " is not registered with the master or not alive");
  }
  return std::pair<int32_t, int32_t>{*rank, std::stoi(worker_id.substr(slash + 1))};
}

Status MasterCore::Join(const v1::JoinRequest& req, v1::JoinReply* reply, Deferred* d) {
  BATON_ASSIGN_OR_RETURN(auto caller, RendezvousCaller(req.worker_id()));
  {
    std::lock_guard<std::mutex> lock(departed_mu_);
    departed_.erase(req.worker_id());
  }
  return rendezvous_.Join(req, caller.first, caller.second, clock_->Now(), reply, &d->seq);
}

Status MasterCore::KvSet(const v1::KvSetRequest& req, Deferred* d) {
  return rendezvous_.KvSet(req, &d->seq);
}

Status MasterCore::KvGet(const v1::KvGetRequest& req, v1::KvGetReply* reply) {
  return rendezvous_.KvGet(req, reply);
}

Status MasterCore::KvAdd(const v1::KvAddRequest& req, v1::KvAddReply* reply, Deferred* d) {
  return rendezvous_.KvAdd(req, reply, &d->seq);
}

void MasterCore::SetJobValue(const std::string& key, const std::string& value) {
  v1::KvSetRequest req;
  req.set_generation(kJobScope);
  req.set_key(key);
  req.set_value(value);
  uint64_t seq = 0;  // durable with the store's next commit; nobody waits for it
  if (Status s = rendezvous_.KvSet(req, &seq); !s.ok()) {
    spdlog::error("a policy could not set {} in the job's kv: {}", key, s.ToString());
  }
}

std::optional<std::string> MasterCore::GetJobValue(const std::string& key) {
  v1::KvGetRequest req;
  req.set_generation(kJobScope);
  req.add_keys(key);
  v1::KvGetReply reply;
  if (!rendezvous_.KvGet(req, &reply).ok() || !reply.found() || reply.values_size() != 1) {
    return std::nullopt;
  }
  return reply.values(0);
}

void MasterCore::SetWorkerNote(const std::string& worker_id, const std::string& name,
                               double value) {
  registry_.SetNote(worker_id, name, value);
}

uint64_t MasterCore::PersistNodeWorkers() {
  // One writer at a time from taking the counts to appending them: two threads (the monitor,
  // a registration) must not append an older map after a newer one, and a caller whose change
  // the other thread took still waits for that append.
  std::lock_guard<std::mutex> lock(node_workers_mu_);
  if (std::optional<std::map<std::string, int32_t>> counts = registry_.TakeChangedNodeWorkers()) {
    node_workers_seq_ = store_->AppendMeta(kNodeWorkersMetaKey, EncodeNodeWorkers(*counts));
  }
  return node_workers_seq_;
}

uint64_t MasterCore::PlanRendezvous(int64_t now_ms) {
  std::vector<RendezvousMember> planned;
  const int32_t per_node = workers_per_node_;
  std::lock_guard<std::mutex> lock(departed_mu_);
  // Every monitor tick: only the live nodes' ids and ranks, not a snapshot of every worker.
  for (const Registry::LiveNode& node : registry_.LiveNodePlans()) {
    const int32_t count = node.workers.value_or(per_node);
    for (int32_t local = 0; local < count; ++local) {
      std::string worker_id = node.node_id + "/" + std::to_string(local);
      if (departed_.contains(worker_id)) continue;
      planned.push_back(RendezvousMember{
          .worker_id = std::move(worker_id), .node_rank = node.rank, .local_rank = local});
    }
  }
  // Until every node the job runs has registered once, the planned set is partial: a generation
  // formed from it would end again as soon as the rest arrive. Spares do not count: they run no
  // worker.
  const bool complete = registry_.KnownWorkingNodes() >= static_cast<size_t>(spec_.nodes);
  return rendezvous_.SetPlanned(std::move(planned), complete, now_ms);
}

void MasterCore::MonitorTick() {
  if (int64_t paused = clock_->Tick(); paused > 0) {
    spdlog::warn(
        "the master did not run for {} ms (stopped or starved); that time is not charged "
        "to leases or node heartbeats",
        paused);
  }
  int64_t now = clock_->Now();
  std::vector<LostLease> lost;
  uint64_t seq = dds_->ExpireLeases(now, &lost);
  if (!lost.empty()) spdlog::warn("{} lease(s) expired and re-queued", lost.size());
  for (const std::string& node : registry_.CollectDeadNodes(now, spec_.timeouts.node_dead_ms)) {
    size_t before = lost.size();
    seq = std::max(seq, dds_->RevokeWorkersWithPrefix(node + "/", "node " + node + " died", &lost));
    seq = std::max(seq, rendezvous_.LeaveNode(node, "node " + node + " died", now));
    spdlog::warn("node {} silent for {} ms: declared dead, {} lease(s) re-queued", node,
                 spec_.timeouts.node_dead_ms, lost.size() - before);
    // A spare takes its place (the fault path, not a policy: any job kind's workers move).
    if (std::optional<std::string> spare =
            registry_.ReplaceWithSpare(node, workers_per_node_, "node " + node + " died")) {
      spdlog::warn("node {} died: its workers move to spare node {}", node, *spare);
    }
  }
  DiscardLost(lost);
  seq = std::max(seq, PersistNodeWorkers());
  seq = std::max(seq, PlanRendezvous(now));
  if (MonoMillis() - meta_persisted_ms_ >= 1000) {
    meta_persisted_ms_ = MonoMillis();
    seq = std::max(seq, PersistProgressMeta());
  }
  (void)WaitDurable(seq);
  SampleRate(now);
  // After dead nodes are marked (their actions are dropped) and before finalizing: a finished job
  // has nothing left to steer.
  if (!finalized_) {
    const DdsCounts c = dds_->Counts();
    controller_.Tick(now,
                     JobProgress{.records_total = c.records_total, .records_done = c.records_done},
                     workers_per_node_);
    // Worker counts a policy moved between nodes. An agent may act on its action before they
    // are durable (its heartbeat can come first); a master that dies in between plans the old
    // counts, the agents re-register to them, and the policy decides again.
    (void)WaitDurable(PersistNodeWorkers());
  }
  if (!finalized_ && dds_->Finished()) {
    DdsCounts c = dds_->Counts();
    Status s = output_.Finalize(c);
    if (!s.ok()) spdlog::error("finalizing output: {}", s.ToString());
    finished_at_ms_ = clock_->Now();
    finalized_ = true;
    (void)WaitDurable(PersistProgressMeta());
    v1::Action stop;
    stop.set_kind(v1::Action::KIND_STOP);
    stop.set_reason("job finished");
    registry_.QueueActionForAll(stop);
    spdlog::info("job finished: {} shard(s) done, {} dead-lettered, {} records", c.done, c.dead,
                 c.records_done);
  }
  CheckAgentsGone();  // after finalizing: a job that just finished is not given up
  // A status snapshot walks every node and worker: build one only for a live exporter, and only
  // as often as a scraper could notice.
  if (metrics_ && MonoMillis() - metrics_updated_ms_ >= 1000) {
    metrics_updated_ms_ = MonoMillis();
    v1::JobStatus st;
    GetStatus(&st);
    metrics_->Update(st);
  }
}

void MasterCore::CheckAgentsGone() {
  const int64_t now = clock_->Now();  // the master's running time, like node deadlines
  if (finalized_ || registry_.LiveNodes() > 0) {
    no_live_node_since_ms_ = now;
    return;
  }
  const int64_t limit = spec_.timeouts.agents_gone_ms;
  if (limit <= 0 || agents_gone_ || now - no_live_node_since_ms_ < limit) return;
  DdsCounts c = dds_->Counts();
  spdlog::error(
      "no agent alive for {} ms (timeouts.agents_gone_ms) with {} shard(s) unfinished: ending "
      "the job unfinished; its state is kept, running it again resumes",
      limit, c.todo + c.doing);
  agents_gone_ = true;
}

bool MasterCore::ReadyToExit(int64_t stop_wait_ms) const {
  if (!finalized_) return false;
  return registry_.AllLiveNodesStopped() || clock_->Now() - finished_at_ms_ > stop_wait_ms;
}

}  // namespace baton::master
