#include "sdk/worker.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/grpc_util.h"
#include "common/parent_death.h"
#include "common/process_stats.h"
#include "common/worker_env.h"

namespace baton::sdk {
namespace {

Result<std::string> RequireEnv(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') {
    return Status::InvalidArgument(std::string("environment variable ") + name +
                                   " is not set; workers are started by `baton agent`, which sets "
                                   "it (see common/worker_env.h)");
  }
  return std::string(v);
}

int32_t EnvInt(const char* name, int32_t fallback) {
  const char* v = std::getenv(name);
  return v ? static_cast<int32_t>(std::strtol(v, nullptr, 10)) : fallback;
}

constexpr size_t kOutputBufferBytes = 1 << 20;

}  // namespace

Result<WorkerIdentity> WorkerIdentity::FromEnvironment() {
  WorkerIdentity id;
  BATON_ASSIGN_OR_RETURN(id.master_address, RequireEnv(env::kMasterAddr));
  BATON_ASSIGN_OR_RETURN(id.token, RequireEnv(env::kToken));
  BATON_ASSIGN_OR_RETURN(id.worker_id, RequireEnv(env::kWorkerId));
  const char* node = std::getenv(env::kNodeId);
  id.node_id = node ? node : id.worker_id.substr(0, id.worker_id.find('/'));
  const char* job = std::getenv(env::kJobId);
  id.job_id = job ? job : "";
  id.node_rank = EnvInt(env::kNodeRank, 0);
  id.local_rank = EnvInt(env::kLocalRank, 0);
  id.global_rank = EnvInt(env::kGlobalRank, 0);
  const char* unreachable = std::getenv(env::kMasterUnreachableMs);
  if (unreachable) id.master_unreachable_ms = std::strtoll(unreachable, nullptr, 10);
  return id;
}

// ---------------------------------------------------------------------------------------------

Shard::~Shard() {
  if (out_fd_ >= 0) ::close(out_fd_);
  if (worker_) worker_->Forget(*this);
}

Status Shard::ForEachRecord(const std::function<Status(std::string_view)>& fn) {
  int fd = ::open(range_.path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("open " + range_.path + ": " + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  std::string carry;  // a record split across reads
  uint64_t pos = range_.byte_begin, seen = 0;
  Status status;
  while (pos < range_.byte_end && status.ok()) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), range_.byte_end - pos));
    ssize_t n = ::pread(fd, buf.data(), want, static_cast<off_t>(pos));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      status = Status::IoError("read " + range_.path + " at " + std::to_string(pos) + ": " +
                               (n < 0 ? std::strerror(errno) : "file is shorter than expected"));
      break;
    }
    pos += static_cast<uint64_t>(n);
    const char* p = buf.data();
    const char* end = p + n;
    while (p < end && status.ok()) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      if (nl == nullptr) {
        carry.append(p, end);
        break;
      }
      std::string_view line;
      if (!carry.empty()) {
        carry.append(p, nl);
        line = carry;
      } else {
        line = std::string_view(p, static_cast<size_t>(nl - p));
      }
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      status = fn(line);
      ++seen;
      carry.clear();
      p = nl + 1;
    }
  }
  if (status.ok() && !carry.empty()) {  // last line of a file without a final newline
    status = fn(carry);
    ++seen;
  }
  ::close(fd);
  if (worker_) worker_->AddRecords(seen);
  if (status.ok() && seen != range_.record_count) {
    return Status::FailedPrecondition("shard " + std::to_string(id_) + " of " + range_.path +
                                      " holds " + std::to_string(seen) + " records, expected " +
                                      std::to_string(range_.record_count) +
                                      ": the input changed after the job started");
  }
  return status;
}

Status Shard::Write(std::string_view data) {
  if (staging_path_.empty()) {
    return Status::FailedPrecondition("the job has no output.dir: shards cannot write output");
  }
  if (out_fd_ < 0) {
    out_fd_ = ::open(staging_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd_ < 0)
      return Status::IoError("create " + staging_path_ + ": " + std::strerror(errno));
  }
  out_buffer_.append(data);
  if (out_buffer_.size() >= kOutputBufferBytes) return FlushOutput();
  return Status::Ok();
}

Status Shard::FlushOutput() {
  size_t off = 0;
  while (off < out_buffer_.size()) {
    ssize_t n = ::write(out_fd_, out_buffer_.data() + off, out_buffer_.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("write " + staging_path_ + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  out_buffer_.clear();
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

namespace {

// A lease this process holds, and when to renew it. Each lease keeps its own schedule, taken from
// the length the master granted it: a job's leases may be far shorter than any default, and a
// lease adopted while the renewal thread sleeps must not wait for a schedule made without it.
struct HeldLease {
  uint64_t token = 0;
  std::shared_ptr<std::atomic<bool>> lost;  // shared with the Shard once adopted
  int64_t lease_ms = 0;                     // as granted or last renewed by the master
  int64_t renew_at_ms = 0;                  // monotonic
};

// Renew a lease a third of the way through it (two renewals may fail before it expires).
int64_t RenewPeriodMs(int64_t lease_ms) { return std::max<int64_t>(50, lease_ms / 3); }

}  // namespace

struct Worker::Impl {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::ShardService::Stub> shards;
  std::unique_ptr<v1::JobService::Stub> job;
  std::mutex mu;
  // Wakes the background thread: on stop, and whenever a lease is added (its renewal may be due
  // before the thread's current wake-up time).
  std::condition_variable cv;
  bool stopping = false;
  bool report_soon = false;  // Worker::ReportProgressSoon
  // Leases this process holds, by shard id.
  std::map<uint64_t, HeldLease> held;
  std::thread background;
  // Leases handed out with earlier commits (WorkerOptions::lease_with_commit), oldest first.
  // Guarded by `mu`: threads of one process may lease and commit concurrently.
  std::deque<v1::LeaseShardReply> prefetched;
  std::mutex counters_mu;
  std::map<std::string, uint64_t, std::less<>> counters;  // Worker::AddCounter
  std::map<std::string, double, std::less<>> gauges;      // Worker::SetGauge
  bool counters_changed = false;                          // since the last progress report
  // One report at a time, so that they reach the master in the order of their snapshots (a
  // Commit's report never overtakes the periodic one before it).
  std::mutex report_mu;

  // Starts renewing `lease` (under `mu`); returns its lost flag. A lease already held under the
  // same token (prefetched, now adopted) keeps its schedule and flag, so a loss seen meanwhile
  // is not forgotten. The caller notifies `cv` after releasing `mu`.
  std::shared_ptr<std::atomic<bool>> HoldLocked(const v1::ShardLease& lease) {
    auto it = held.find(lease.shard_id());
    if (it != held.end() && it->second.token == lease.token()) return it->second.lost;
    // The same shard under a new token: the old lease expired and came back to this worker. The
    // old Shard object must see that it lost its lease.
    if (it != held.end()) it->second.lost->store(true);
    HeldLease h;
    h.token = lease.token();
    h.lost = std::make_shared<std::atomic<bool>>(false);
    h.lease_ms = lease.lease_ms();
    h.renew_at_ms = MonoMillis() + RenewPeriodMs(lease.lease_ms());
    held[lease.shard_id()] = h;
    return h.lost;
  }
};

Worker::Worker(WorkerIdentity identity, WorkerOptions options)
    : identity_(std::move(identity)), options_(options), impl_(std::make_unique<Impl>()) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->background.joinable()) impl_->background.join();
  ReportProgress();  // the last counts, so that status shows what this process did
}

void Worker::AddCounter(std::string_view name, uint64_t n) {
  std::lock_guard<std::mutex> lock(impl_->counters_mu);
  auto it = impl_->counters.find(name);
  if (it == impl_->counters.end()) it = impl_->counters.emplace(std::string(name), 0).first;
  it->second += n;
  impl_->counters_changed = true;
}

void Worker::SetGauge(std::string_view name, double value) {
  if (!std::isfinite(value)) return;  // the master refuses non-finite values; keep the last one
  std::lock_guard<std::mutex> lock(impl_->counters_mu);
  auto it = impl_->gauges.find(name);
  if (it == impl_->gauges.end()) it = impl_->gauges.emplace(std::string(name), 0).first;
  it->second = value;
}

void Worker::ReportCountersIfChanged() {
  bool changed;
  {
    std::lock_guard<std::mutex> lock(impl_->counters_mu);
    changed = impl_->counters_changed;
  }
  if (changed) ReportProgress();
}

void Worker::ReportProgress(std::chrono::milliseconds deadline) {
  std::lock_guard<std::mutex> report_lock(impl_->report_mu);
  v1::ReportProgressRequest req;
  req.set_worker_id(identity_.worker_id);
  req.set_node_id(identity_.node_id);
  req.set_records_total(records_.load());
  ProcessStats ps = ReadProcessStats(::getpid());
  req.set_cpu_seconds(ps.cpu_seconds);
  req.set_rss_bytes(ps.rss_bytes);
  {
    std::lock_guard<std::mutex> lock(impl_->counters_mu);
    for (const auto& [name, n] : impl_->counters) (*req.mutable_counters())[name] = n;
    for (const auto& [name, v] : impl_->gauges) (*req.mutable_gauges())[name] = v;
    impl_->counters_changed = false;
  }
  grpc::ClientContext ctx;
  PrepareContext(ctx, identity_.token, deadline);
  v1::ReportProgressReply reply;
  (void)impl_->job->ReportProgress(&ctx, req, &reply);  // best effort: status only
}

Result<std::unique_ptr<Worker>> Worker::Connect(const WorkerIdentity& identity,
                                                WorkerOptions options) {
  // Die with the agent: a SIGKILLed agent must not leave workers that hold leases forever.
  if (const char* agent = std::getenv(env::kAgentPid)) {
    pid_t agent_pid = static_cast<pid_t>(std::strtol(agent, nullptr, 10));
    if (agent_pid > 0) {
      BATON_RETURN_IF_ERROR(DieWithParent(agent_pid).WithContext("the worker's agent"));
    }
  }
  std::unique_ptr<Worker> w(new Worker(identity, options));
  w->impl_->channel = MakeChannel(identity.master_address);
  w->impl_->shards = v1::ShardService::NewStub(w->impl_->channel);
  w->impl_->job = v1::JobService::NewStub(w->impl_->channel);
  Worker* self = w.get();
  w->impl_->background = std::thread([self] { self->BackgroundLoop(); });
  return w;
}

bool Worker::RenewHeld(std::unique_lock<std::mutex>& lock, int64_t now,
                       std::chrono::milliseconds deadline) {
  Impl& impl = *impl_;
  v1::RenewLeasesRequest req;
  req.set_worker_id(identity_.worker_id);
  for (const auto& [id, h] : impl.held) {
    auto* ref = req.add_leases();
    ref->set_shard_id(id);
    ref->set_token(h.token);
  }
  lock.unlock();
  grpc::ClientContext ctx;
  PrepareContext(ctx, identity_.token, deadline);
  v1::RenewLeasesReply reply;
  grpc::Status s = impl.shards->RenewLeases(&ctx, req, &reply);
  lock.lock();
  // The leases asked about that are still held under the same token (not committed since).
  std::map<uint64_t, HeldLease*> asked;
  for (const auto& ref : req.leases()) {
    auto it = impl.held.find(ref.shard_id());
    if (it == impl.held.end() || it->second.token != ref.token()) continue;
    asked[ref.shard_id()] = &it->second;
    // Unless answered below: try again soon, while the lease may still hold on the master.
    it->second.renew_at_ms = now + std::max<int64_t>(50, RenewPeriodMs(it->second.lease_ms) / 3);
  }
  if (!s.ok()) return false;
  for (const auto& r : reply.renewals()) {
    auto it = asked.find(r.shard_id());
    if (it == asked.end()) continue;
    HeldLease& h = *it->second;
    if (r.renewed()) {
      if (reply.lease_ms() > 0) h.lease_ms = reply.lease_ms();
      // From when the request left: the master's new deadline is no earlier than that.
      h.renew_at_ms = now + RenewPeriodMs(h.lease_ms);
    } else if (!h.lost->exchange(true)) {
      spdlog::warn("lease of shard {} lost: {}", r.shard_id(), r.reason());
    }
  }
  return true;
}

void Worker::ReportProgressSoon() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->report_soon = true;
  }
  impl_->cv.notify_all();
}

Status Worker::ConfirmLeases(std::chrono::milliseconds deadline) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  if (impl_->held.empty()) return Status::Ok();
  if (!RenewHeld(lock, MonoMillis(), deadline)) {
    return Status::Unavailable("could not confirm this worker's leases with the master");
  }
  return Status::Ok();
}

// Renews held leases when the first of them is due (all of them in one call, which keeps their
// schedules together), and reports progress every interval. Sleeps until the earliest of both,
// or until a new lease or the destructor wakes it.
void Worker::BackgroundLoop() {
  Impl& impl = *impl_;
  int64_t next_progress = 0;
  std::unique_lock<std::mutex> lock(impl.mu);
  while (!impl.stopping) {
    int64_t now = MonoMillis();
    int64_t due = std::numeric_limits<int64_t>::max();
    for (const auto& [id, h] : impl.held) due = std::min(due, h.renew_at_ms);
    if (now >= due) {
      int64_t deadline_ms = std::numeric_limits<int64_t>::max();
      for (const auto& [id, h] : impl.held) {
        deadline_ms = std::min(deadline_ms, RenewPeriodMs(h.lease_ms));
      }
      RenewHeld(lock, now, std::chrono::milliseconds(deadline_ms));
      continue;  // recompute what is due next with the new schedules
    }
    if (now >= next_progress || impl.report_soon) {
      impl.report_soon = false;
      next_progress = now + options_.progress_interval_ms;
      // A slow progress call must not hold up the next renewal of a short lease.
      int64_t deadline_ms = 1000;
      for (const auto& [id, h] : impl.held)
        deadline_ms = std::min(deadline_ms, RenewPeriodMs(h.lease_ms));
      lock.unlock();
      ReportProgress(std::chrono::milliseconds(deadline_ms));
      lock.lock();
      continue;
    }
    int64_t wake = std::min(due, next_progress);
    impl.cv.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(1, wake - now)));
  }
}

Status Worker::CallMaster(const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  // Every call the SDK makes is idempotent (commits per token), so retrying is always safe.
  return RetryIdempotent(
      [&] {
        grpc::ClientContext ctx;
        PrepareContext(ctx, identity_.token);
        return FromGrpc(rpc(&ctx));
      },
      std::chrono::milliseconds(identity_.master_unreachable_ms));
}

void Worker::Forget(const Shard& shard) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->held.find(shard.id_);
  if (it != impl_->held.end() && it->second.token == shard.token_) impl_->held.erase(it);
}

Result<std::unique_ptr<Shard>> Worker::NextShard() {
  while (true) {
    bool finished = false;
    int64_t retry_after_ms = 0;
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<Shard> shard, LeaseOnce(&finished, &retry_after_ms));
    if (shard || finished) return shard;
    std::this_thread::sleep_for(std::chrono::milliseconds(std::max<int64_t>(10, retry_after_ms)));
  }
}

Result<std::unique_ptr<Shard>> Worker::TryNextShard(bool* finished) {
  int64_t retry_after_ms = 0;
  *finished = false;
  return LeaseOnce(finished, &retry_after_ms);
}

Result<std::unique_ptr<Shard>> Worker::LeaseOnce(bool* finished, int64_t* retry_after_ms) {
  v1::LeaseShardReply reply;
  bool have = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    if (!impl_->prefetched.empty()) {
      reply = std::move(impl_->prefetched.front());
      impl_->prefetched.pop_front();
      have = true;
    }
  }
  if (!have) {
    v1::LeaseShardRequest req;
    req.set_worker_id(identity_.worker_id);
    req.set_node_id(identity_.node_id);
    Status s = CallMaster([&](grpc::ClientContext* ctx) {
      reply.Clear();
      return impl_->shards->LeaseShard(ctx, req, &reply);
    });
    if (!s.ok()) return s.WithContext("lease a shard from " + identity_.master_address);
  }
  switch (reply.outcome()) {
    case v1::LeaseShardReply::OUTCOME_END:
      *finished = true;
      return std::unique_ptr<Shard>();
    case v1::LeaseShardReply::OUTCOME_WAIT:
      *retry_after_ms = reply.retry_after_ms();
      return std::unique_ptr<Shard>();
    case v1::LeaseShardReply::OUTCOME_LEASED:
      return Adopt(reply.lease());
    default:
      return Status::Internal("unexpected lease outcome from master");
  }
}

std::unique_ptr<Shard> Worker::Adopt(const v1::ShardLease& l) {
  std::unique_ptr<Shard> shard(new Shard());
  shard->id_ = l.shard_id();
  shard->token_ = l.token();
  shard->epoch_ = l.epoch();
  shard->attempt_ = l.attempt();
  shard->range_ = RecordRange{l.range().path(), l.range().byte_begin(), l.range().byte_end(),
                              l.range().first_record(), l.range().record_count()};
  shard->staging_path_ = l.staging_path();
  shard->worker_ = this;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    shard->lost_ = impl_->HoldLocked(l);
  }
  impl_->cv.notify_all();  // its first renewal may be due before the thread's next wake-up
  return shard;
}

Status Shard::StageOutput() {
  if (out_fd_ < 0) {  // no record produced output: the part file is empty, not missing
    BATON_RETURN_IF_ERROR(Write({}));
  }
  BATON_RETURN_IF_ERROR(FlushOutput());
  // The bytes must be on disk before the master may promote them.
  if (::fsync(out_fd_) != 0) {
    return Status::IoError("fsync " + staging_path_ + ": " + std::strerror(errno));
  }
  ::close(out_fd_);
  out_fd_ = -1;
  return Status::Ok();
}

Status Worker::Commit(Shard& shard) {
  bool has_output = !shard.staging_path_.empty();
  if (has_output) {
    if (Status staged = shard.StageOutput(); !staged.ok()) {
      // A full or failing disk: give the shard back with the real cause, so that the master's
      // dead-letter list and `baton status` say what happened, not just "exited with code 1".
      (void)Fail(shard, staged.message());
      return staged;
    }
  }
  ReportCountersIfChanged();
  v1::CommitShardRequest req;
  req.set_worker_id(identity_.worker_id);
  req.set_shard_id(shard.id_);
  req.set_token(shard.token_);
  req.set_has_output(has_output);
  req.set_records(shard.range_.record_count);
  {
    // Ask for the next lease only when none is waiting: concurrent committers would otherwise
    // each bring one back and the extras would sit unused while other workers starve.
    std::lock_guard<std::mutex> lock(impl_->mu);
    req.set_lease_next(options_.lease_with_commit && impl_->prefetched.empty());
  }
  // Commit is idempotent per token, so it is safe to retry across a master restart.
  v1::CommitShardReply reply;
  Status s = CallMaster([&](grpc::ClientContext* ctx) {
    reply.Clear();
    return impl_->shards->CommitShard(ctx, req, &reply);
  });
  Forget(shard);
  if (s.ok() && reply.has_next()) {
    const v1::LeaseShardReply& next = reply.next();
    {
      std::lock_guard<std::mutex> lock(impl_->mu);
      // Renew it from now on, even before the program asks for it.
      if (next.outcome() == v1::LeaseShardReply::OUTCOME_LEASED) impl_->HoldLocked(next.lease());
      if (next.outcome() != v1::LeaseShardReply::OUTCOME_WAIT) impl_->prefetched.push_back(next);
    }
    impl_->cv.notify_all();
  }
  return s;
}

Status Worker::Fail(Shard& shard, std::string_view reason) {
  if (shard.out_fd_ >= 0) {
    ::close(shard.out_fd_);
    shard.out_fd_ = -1;
  }
  ReportCountersIfChanged();
  v1::FailShardRequest req;
  req.set_worker_id(identity_.worker_id);
  req.set_shard_id(shard.id_);
  req.set_token(shard.token_);
  req.set_reason(std::string(reason));
  v1::FailShardReply reply;
  Status s = CallMaster(
      [&](grpc::ClientContext* ctx) { return impl_->shards->FailShard(ctx, req, &reply); });
  Forget(shard);
  return s;
}

}  // namespace baton::sdk
