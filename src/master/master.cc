#include "master/master.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/grpc_util.h"
#include "common/secret.h"
#include "master/master_core.h"
#include "master/state_store.h"

namespace baton::master {

std::string StateDbPath(const std::string& state_dir) { return state_dir + "/state.db"; }
std::string TokenPath(const std::string& state_dir) { return state_dir + "/token"; }
std::string MasterAddrPath(const std::string& state_dir) { return state_dir + "/master.addr"; }
std::string MasterLockPath(const std::string& state_dir) { return state_dir + "/master.lock"; }

namespace {

constexpr int kMaxRequestBytes = 1 << 20;

// Every handler: refuse calls without the job token, then run the core's logic; baton::Status
// becomes grpc::Status here and nowhere else. Handlers use gRPC's callback API and never wait:
// a reply that needs a durable transition is finished by whichever handler commits the group
// (usually this one), so concurrent calls share one transaction and no thread hand-off is needed.
#define BATON_HANDLER(ctx, body)                                 \
  do {                                                           \
    grpc::ServerUnaryReactor* reactor = (ctx)->DefaultReactor(); \
    grpc::Status auth = CheckToken((ctx), core_->token());       \
    reactor->Finish(auth.ok() ? ToGrpc(body) : auth);            \
    return reactor;                                              \
  } while (0)

#define BATON_DURABLE_HANDLER(ctx, call)                                         \
  do {                                                                           \
    grpc::ServerUnaryReactor* reactor = (ctx)->DefaultReactor();                 \
    grpc::Status auth = CheckToken((ctx), core_->token());                       \
    if (!auth.ok()) {                                                            \
      reactor->Finish(auth);                                                     \
      return reactor;                                                            \
    }                                                                            \
    Deferred deferred;                                                           \
    Status status = (call);                                                      \
    core_->Complete(std::move(status), std::move(deferred),                      \
                    [reactor](const Status& s) { reactor->Finish(ToGrpc(s)); }); \
    return reactor;                                                              \
  } while (0)

class NodeServiceImpl final : public v1::NodeService::CallbackService {
 public:
  explicit NodeServiceImpl(MasterCore* core) : core_(core) {}
  grpc::ServerUnaryReactor* RegisterNode(grpc::CallbackServerContext* ctx,
                                         const v1::RegisterNodeRequest* req,
                                         v1::RegisterNodeReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->RegisterNode(*req, reply, &deferred));
  }
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* ctx,
                                      const v1::HeartbeatRequest* req,
                                      v1::HeartbeatReply* reply) override {
    BATON_HANDLER(ctx, core_->Heartbeat(*req, reply));
  }
  grpc::ServerUnaryReactor* ReportExit(grpc::CallbackServerContext* ctx,
                                       const v1::ReportExitRequest* req,
                                       v1::ReportExitReply*) override {
    BATON_DURABLE_HANDLER(ctx, core_->ReportExit(*req, &deferred));
  }

 private:
  MasterCore* core_;
};

class ShardServiceImpl final : public v1::ShardService::CallbackService {
 public:
  explicit ShardServiceImpl(MasterCore* core) : core_(core) {}
  grpc::ServerUnaryReactor* LeaseShard(grpc::CallbackServerContext* ctx,
                                       const v1::LeaseShardRequest* req,
                                       v1::LeaseShardReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->LeaseShard(*req, reply, &deferred));
  }
  grpc::ServerUnaryReactor* RenewLeases(grpc::CallbackServerContext* ctx,
                                        const v1::RenewLeasesRequest* req,
                                        v1::RenewLeasesReply* reply) override {
    BATON_HANDLER(ctx, core_->RenewLeases(*req, reply));
  }
  grpc::ServerUnaryReactor* CommitShard(grpc::CallbackServerContext* ctx,
                                        const v1::CommitShardRequest* req,
                                        v1::CommitShardReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->CommitShard(*req, reply, &deferred));
  }
  grpc::ServerUnaryReactor* FailShard(grpc::CallbackServerContext* ctx,
                                      const v1::FailShardRequest* req,
                                      v1::FailShardReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->FailShard(*req, reply, &deferred));
  }

 private:
  MasterCore* core_;
};

class JobServiceImpl final : public v1::JobService::CallbackService {
 public:
  explicit JobServiceImpl(MasterCore* core) : core_(core) {}
  grpc::ServerUnaryReactor* ReportProgress(grpc::CallbackServerContext* ctx,
                                           const v1::ReportProgressRequest* req,
                                           v1::ReportProgressReply*) override {
    BATON_HANDLER(ctx, core_->ReportProgress(*req));
  }
  grpc::ServerUnaryReactor* GetStatus(grpc::CallbackServerContext* ctx, const v1::GetStatusRequest*,
                                      v1::JobStatus* reply) override {
    BATON_HANDLER(ctx, (core_->GetStatus(reply), Status::Ok()));
  }
  grpc::ServerUnaryReactor* ScaleWorkers(grpc::CallbackServerContext* ctx,
                                         const v1::ScaleWorkersRequest* req,
                                         v1::ScaleWorkersReply* reply) override {
    BATON_HANDLER(ctx, core_->ScaleWorkers(*req, reply));
  }

 private:
  MasterCore* core_;
};

// What decides the shard ranges. Sizes and modification times stand in for content, so that a
// changed input file is noticed on resume without hashing gigabytes.
std::string Fingerprint(const JobSpec& spec) {
  std::string key;
  for (const auto& p : spec.input.paths) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    key += p + "|" + std::to_string(st.st_size) + "|" + std::to_string(st.st_mtim.tv_sec) + ";";
  }
  key += std::to_string(spec.input.records_per_shard) + "|" +
         std::to_string(spec.input.skip_header) + "|" + std::to_string(spec.input.epochs) + "|" +
         std::to_string(spec.input.shuffle) + "|" + std::to_string(spec.input.seed) + "|" +
         spec.output.dir + "|" + spec.output.suffix;
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016zx", std::hash<std::string>{}(key));
  return hex;
}

class RendezvousServiceImpl final : public v1::RendezvousService::CallbackService {
 public:
  explicit RendezvousServiceImpl(MasterCore* core) : core_(core) {}
  grpc::ServerUnaryReactor* Join(grpc::CallbackServerContext* ctx, const v1::JoinRequest* req,
                                 v1::JoinReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->Join(*req, reply, &deferred));
  }
  grpc::ServerUnaryReactor* GetGeneration(grpc::CallbackServerContext* ctx,
                                          const v1::GetGenerationRequest*,
                                          v1::Generation* reply) override {
    BATON_HANDLER(ctx, (core_->GetGeneration(reply), Status::Ok()));
  }
  grpc::ServerUnaryReactor* KvSet(grpc::CallbackServerContext* ctx, const v1::KvSetRequest* req,
                                  v1::KvSetReply*) override {
    BATON_DURABLE_HANDLER(ctx, core_->KvSet(*req, &deferred));
  }
  grpc::ServerUnaryReactor* KvGet(grpc::CallbackServerContext* ctx, const v1::KvGetRequest* req,
                                  v1::KvGetReply* reply) override {
    BATON_HANDLER(ctx, core_->KvGet(*req, reply));
  }
  grpc::ServerUnaryReactor* KvAdd(grpc::CallbackServerContext* ctx, const v1::KvAddRequest* req,
                                  v1::KvAddReply* reply) override {
    BATON_DURABLE_HANDLER(ctx, core_->KvAdd(*req, reply, &deferred));
  }

 private:
  MasterCore* core_;
};

class MasterImpl final : public Master {
 public:
  MasterImpl(MasterOptions options, std::unique_ptr<MasterCore> core, int lock_fd)
      : options_(std::move(options)),
        core_(std::move(core)),
        node_service_(core_.get()),
        shard_service_(core_.get()),
        job_service_(core_.get()),
        rendezvous_service_(core_.get()),
        lock_fd_(lock_fd) {}

  ~MasterImpl() override {
    Shutdown();
    if (monitor_.joinable()) monitor_.join();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    if (lock_fd_ >= 0) ::close(lock_fd_);
  }

  Status Serve() {
    grpc::ServerBuilder builder;
    // Two masters must never share a port: a stale one would silently take half the calls.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // Requests are small (ids and strings are bounded, see request_limits.h); refuse big ones
    // before they are parsed.
    builder.SetMaxReceiveMessageSize(kMaxRequestBytes);
    int port = options_.port != 0 ? options_.port : options_.spec.master.port;
    int bound = 0;
    std::string host = options_.spec.master.host;
    builder.AddListeningPort(host + ":" + std::to_string(port), grpc::InsecureServerCredentials(),
                             &bound);
    builder.RegisterService(&node_service_);
    builder.RegisterService(&shard_service_);
    builder.RegisterService(&job_service_);
    builder.RegisterService(&rendezvous_service_);
    server_ = builder.BuildAndStart();
    if (!server_ || bound == 0) {
      return Status::Unavailable("cannot listen on " + host + ":" + std::to_string(port) +
                                 " (in use, or not an address of this host)");
    }
    address_ = host + ":" + std::to_string(bound);
    BATON_RETURN_IF_ERROR(
        WriteFileAtomic(MasterAddrPath(options_.spec.master.state_dir), address_ + "\n"));
    monitor_ = std::thread([this] { MonitorLoop(); });
    spdlog::info("master of job '{}' listening on {}", options_.spec.name, address_);
    return Status::Ok();
  }

  std::string address() const override { return address_; }

  void Wait() override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
  }

  void Shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!done_) interrupted_ = !core_->finished();
      done_ = true;
    }
    cv_.notify_all();
  }

  bool finished() const override { return core_->finished(); }

  int exit_code() const override {
    if (core_->agents_gone()) return 4;
    if (!core_->fatal().ok()) return 5;
    if (!core_->finished()) return 3;
    return core_->State() == v1::JOB_STATE_FAILED ? 1 : 0;
  }

 private:
  void MonitorLoop() {
    // Named so that an operator (or a test) can tell it from gRPC's threads in /proc/PID/task.
    pthread_setname_np(pthread_self(), "baton-monitor");
    int64_t ready_since = -1;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (cv_.wait_for(lock, std::chrono::milliseconds(options_.monitor_period_ms),
                         [&] { return done_; })) {
          return;
        }
      }
      core_->MonitorTick();
      if (core_->agents_gone()) {
        Shutdown();
        return;
      }
      if (Status fatal = core_->fatal(); !fatal.ok()) {
        spdlog::critical(
            "stopping: the state in {} cannot be written ({}). Everything acknowledged so far is "
            "kept; free space (or fix the disk) and run the job again to resume.",
            options_.spec.master.state_dir, fatal.message());
        Shutdown();
        return;
      }
      if (core_->ReadyToExit(options_.stop_wait_ms)) {
        if (ready_since < 0) ready_since = MonoMillis();
        if (MonoMillis() - ready_since >= options_.linger_ms) {
          Shutdown();
          return;
        }
      }
    }
  }

  MasterOptions options_;
  std::unique_ptr<MasterCore> core_;
  NodeServiceImpl node_service_;
  ShardServiceImpl shard_service_;
  JobServiceImpl job_service_;
  RendezvousServiceImpl rendezvous_service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::thread monitor_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  bool interrupted_ = false;
  int lock_fd_;
};

}  // namespace

Result<std::unique_ptr<Master>> Master::Start(MasterOptions options) {
  const JobSpec& spec = options.spec;
  const std::string& dir = spec.master.state_dir;
  BATON_RETURN_IF_ERROR(EnsureWritableDirectory(dir).WithContext("state dir"));
  // One master per state dir: a second one would fork the job's history.
  std::string lock_path = MasterLockPath(dir);
  int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lock_fd < 0) return Status::IoError("open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd);
    return Status::FailedPrecondition("another master is running on state dir " + dir);
  }
  if (options.token.empty()) {
    Result<std::string> token = LoadOrCreateSecret(TokenPath(dir));
    if (!token.ok()) {
      ::close(lock_fd);
      return token.status();
    }
    options.token = *token;
  }
  auto fail = [&](const Status& s) -> Status {
    ::close(lock_fd);
    return s;
  };
  Result<std::unique_ptr<StateStore>> store = OpenSqliteStateStore(StateDbPath(dir));
  if (!store.ok()) return fail(store.status());
  LineFileSplitter splitter(spec.input.paths, static_cast<uint32_t>(spec.input.records_per_shard),
                            spec.input.skip_header);
  JobMeta meta{spec.name, Fingerprint(spec), spec.input.paths};
  DdsOptions dds_options{spec.timeouts.lease_ms, spec.failure.max_shard_retries,
                         spec.failure.max_error_bytes};
  ShardLayout layout{spec.input.epochs, spec.input.shuffle, spec.input.seed};
  int64_t t0 = MonoMillis();
  // Leases and heartbeats are judged on the master's running time (run_clock.h).
  auto clock = std::make_unique<RunClock>(options.monitor_period_ms);
  Result<std::unique_ptr<Dds>> dds =
      Dds::Open(store->get(), dds_options, meta, &splitter, layout, clock->Now());
  if (!dds.ok()) return fail(dds.status());
  Result<std::map<std::string, std::string>> values = (*store)->LoadMetaValues();
  if (!values.ok()) return fail(values.status());
  MasterCore::Restored restored;
  if (auto it = values->find("event_counters"); it != values->end()) {
    (*dds)->RestoreEventCounters(it->second);
  }
  if (auto it = values->find("active_ms"); it != values->end()) {
    restored.active_ms = std::strtoll(it->second.c_str(), nullptr, 10);
  }
  Result<std::map<std::string, int32_t>> ranks = (*store)->LoadNodeRanks();
  if (!ranks.ok()) return fail(ranks.status());
  restored.node_ranks = std::move(*ranks);
  DdsCounts counts = (*dds)->Counts();
  spdlog::info("job '{}': {} shard(s), {} records ({} done, {} leased) ready in {} ms", spec.name,
               counts.total, counts.records_total, counts.done, counts.doing, MonoMillis() - t0);
  if (options.release_recovered_leases) {
    int released = 0, retried = 0;
    uint64_t seq = (*dds)->ReleaseAllLeases(&released);
    seq = std::max(seq, (*dds)->RetryDeadLetters(&retried));
    Status s = store->get()->WaitDurable(seq);
    if (!s.ok()) return fail(s);
    if (released > 0) {
      spdlog::info("{} shard(s) leased by a previous run returned to the queue", released);
    }
    if (retried > 0) {
      spdlog::info(
          "{} dead-lettered shard(s) of a previous run queued again with a fresh retry "
          "budget",
          retried);
    }
  }
  OutputCommitter output(spec.output.dir, spec.output.suffix);
  Status prepared = output.Prepare();
  if (prepared.ok()) prepared = output.Recover(**dds);
  if (!prepared.ok()) return fail(prepared.WithContext("output dir"));
  Result<std::unique_ptr<MetricsExporter>> metrics =
      MetricsExporter::Start(spec.master.host, spec.master.metrics_port);
  if (!metrics.ok()) return fail(metrics.status());
  auto core = std::make_unique<MasterCore>(spec, options.token, spec.name, std::move(*store),
                                           std::move(*dds), std::move(*metrics), std::move(clock),
                                           std::move(restored));
  if (Status s = core->RestoreRendezvous(*values); !s.ok()) return fail(s);
  Result<std::vector<std::unique_ptr<Policy>>> policies = PoliciesFor(spec, *core);
  if (!policies.ok()) return fail(policies.status());
  for (auto& policy : *policies) {
    spdlog::info("policy {} active", policy->name());
    core->controller().AddPolicy(std::move(policy));
  }
  auto master = std::make_unique<MasterImpl>(std::move(options), std::move(core), lock_fd);
  BATON_RETURN_IF_ERROR(master->Serve());
  return std::unique_ptr<Master>(std::move(master));
}

}  // namespace baton::master
