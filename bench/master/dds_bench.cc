// DDS benchmark: the real master process (`baton master`, durable SQLite state) against N
// concurrent clients doing lease+commit loops, as workers would. Prints key=value lines:
//   mode=separate|with_commit clients=N pairs_per_s=X p50_ms=Y p99_ms=Z
//   pending_shards=1000000 master_rss_mb=R startup_s=S
// Usage: dds_bench BATON_BIN [--seconds 5] [--clients 1,8,64] [--rss-shards 1000000]
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/spawn.h"
#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/grpc_util.h"
#include "common/process_stats.h"
#include "common/secret.h"

namespace {

struct MasterProcess {
  pid_t pid = 0;
  std::string address, token;
};

std::string MakeJob(const std::string& dir, int64_t records) {
  std::filesystem::create_directories(dir);
  {
    std::ofstream in(dir + "/input.txt");
    std::string line = "x\n";
    for (int64_t i = 0; i < records; ++i) in << line;
  }
  std::ofstream spec(dir + "/job.yaml");
  spec << "name: ddsbench\n"
       << "input:\n  paths: [input.txt]\n  records_per_shard: 1\n"
       << "worker:\n  command: [/bin/true]\n"
       << "master:\n  state_dir: state\n"
       << "timeouts:\n  lease_ms: 600000\n  node_dead_ms: 600000\n";
  return dir + "/job.yaml";
}

MasterProcess StartMaster(const std::string& baton, const std::string& spec,
                          const std::string& state_dir, double* startup_s) {
  MasterProcess m;
  double t0 = baton::MonoSeconds();
  baton::agent::SpawnRequest req;
  req.argv = {baton, "master", "--spec", spec};
  req.output_path = state_dir + ".log";
  auto pid = baton::agent::SpawnProcess(req);
  if (!pid.ok()) {
    std::fprintf(stderr, "%s\n", pid.status().ToString().c_str());
    std::exit(1);
  }
  m.pid = *pid;
  while (true) {
    auto a = baton::ReadFile(state_dir + "/master.addr");
    if (a.ok() && !a->empty()) {
      m.address = a->substr(0, a->find('\n'));
      break;
    }
    int st;
    if (::waitpid(m.pid, &st, WNOHANG) == m.pid) {
      std::fprintf(stderr, "master exited; see %s.log\n", state_dir.c_str());
      std::exit(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (startup_s) *startup_s = baton::MonoSeconds() - t0;
  m.token = *baton::LoadSecret(state_dir + "/token");
  return m;
}

void StopMaster(MasterProcess& m) {
  ::kill(m.pid, SIGKILL);
  int st;
  ::waitpid(m.pid, &st, 0);
}

// One simulated worker: a chain of calls, each issued from the completion of the previous one
// (gRPC callback API), so that the benchmark's own client costs as little CPU as possible on
// this 2-core machine and the master gets the rest.
//   separate:    LeaseShard, then CommitShard, per shard (two round trips), as a plain client.
//   with_commit: CommitShard(lease_next) returns the next lease (one round trip), as the SDK does.
class WorkerChain {
 public:
  WorkerChain(baton::v1::ShardService::Stub* stub, const std::string& token, std::string worker,
              bool with_commit, const std::atomic<bool>* stop, std::atomic<int>* errors,
              std::atomic<int>* running)
      : stub_(stub),
        token_(token),
        worker_(std::move(worker)),
        with_commit_(with_commit),
        stop_(stop),
        errors_(errors),
        running_(running) {}

  void Start() {
    ++*running_;
    t0_ = baton::MonoSeconds();
    Lease();
  }
  std::vector<double>& latencies() { return latencies_; }

 private:
  void Lease() {
    ctx_ = std::make_unique<grpc::ClientContext>();
    baton::PrepareContext(*ctx_, token_);
    lease_req_.set_worker_id(worker_);
    lease_req_.set_node_id("bench");
    stub_->async()->LeaseShard(ctx_.get(), &lease_req_, &lease_rep_, [this](grpc::Status s) {
      if (!s.ok() || lease_rep_.outcome() != baton::v1::LeaseShardReply::OUTCOME_LEASED) {
        return Fail();
      }
      Commit();
    });
  }

  void Commit() {
    ctx_ = std::make_unique<grpc::ClientContext>();
    baton::PrepareContext(*ctx_, token_);
    commit_req_.set_worker_id(worker_);
    commit_req_.set_shard_id(lease_rep_.lease().shard_id());
    commit_req_.set_token(lease_rep_.lease().token());
    commit_req_.set_lease_next(with_commit_);
    stub_->async()->CommitShard(ctx_.get(), &commit_req_, &commit_rep_, [this](grpc::Status s) {
      if (!s.ok()) return Fail();
      double now = baton::MonoSeconds();
      latencies_.push_back((now - t0_) * 1000.0);
      t0_ = now;
      if (stop_->load()) return Done();
      if (!with_commit_) return Lease();
      lease_rep_ = commit_rep_.next();
      if (lease_rep_.outcome() != baton::v1::LeaseShardReply::OUTCOME_LEASED) return Fail();
      Commit();
    });
  }

  void Fail() {
    ++*errors_;
    Done();
  }
  void Done() { --*running_; }

  baton::v1::ShardService::Stub* stub_;
  const std::string& token_;
  std::string worker_;
  bool with_commit_;
  const std::atomic<bool>* stop_;
  std::atomic<int>* errors_;
  std::atomic<int>* running_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  baton::v1::LeaseShardRequest lease_req_;
  baton::v1::LeaseShardReply lease_rep_;
  baton::v1::CommitShardRequest commit_req_;
  baton::v1::CommitShardReply commit_rep_;
  std::vector<double> latencies_;
  double t0_ = 0;
};

void RunClients(const MasterProcess& m, int clients, double seconds, bool with_commit) {
  std::atomic<bool> stop{false};
  std::atomic<int> errors{0}, running{0};
  // A few channels (connections), shared by the clients, as workers on a few nodes would.
  std::vector<std::unique_ptr<baton::v1::ShardService::Stub>> stubs;
  for (int i = 0; i < std::min(clients, 8); ++i) {
    stubs.push_back(baton::v1::ShardService::NewStub(baton::MakeChannel(m.address)));
  }
  std::vector<std::unique_ptr<WorkerChain>> chains;
  for (int c = 0; c < clients; ++c) {
    chains.push_back(std::make_unique<WorkerChain>(
        stubs[static_cast<size_t>(c) % stubs.size()].get(), m.token, "bench/" + std::to_string(c),
        with_commit, &stop, &errors, &running));
  }
  double t0 = baton::MonoSeconds();
  for (auto& chain : chains) chain->Start();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  double elapsed = baton::MonoSeconds() - t0;
  while (running.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::vector<double> all;
  for (auto& chain : chains)
    all.insert(all.end(), chain->latencies().begin(), chain->latencies().end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf(
      "mode=%s clients=%d pairs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d "
      "durable=sqlite_wal\n",
      with_commit ? "with_commit" : "separate", clients, static_cast<double>(all.size()) / elapsed,
      pct(0.50), pct(0.99), errors.load());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s BATON_BIN [--seconds S] [--clients 1,8,64] [--rss-shards N]\n",
                 argv[0]);
    return 2;
  }
  std::string baton = argv[1];
  double seconds = 5;
  std::vector<int> client_counts = {1, 8, 64};
  int64_t rss_shards = 1000000;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--seconds") seconds = std::atof(v.c_str());
    if (k == "--rss-shards") rss_shards = std::atoll(v.c_str());
    if (k == "--clients") {
      client_counts.clear();
      std::stringstream ss(v);
      std::string item;
      while (std::getline(ss, item, ',')) client_counts.push_back(std::atoi(item.c_str()));
    }
  }
  signal(SIGPIPE, SIG_IGN);
  char tmpl[] = "/tmp/baton-ddsbench-XXXXXX";
  std::string root = ::mkdtemp(tmpl);
  // Enough shards that no run drains the queue.
  std::string spec = MakeJob(root + "/throughput", 400000);
  for (bool with_commit : {false, true}) {
    for (int clients : client_counts) {
      std::filesystem::remove_all(root + "/throughput/state");
      MasterProcess m = StartMaster(baton, spec, root + "/throughput/state", nullptr);
      RunClients(m, clients, seconds, with_commit);
      StopMaster(m);
    }
  }
  if (rss_shards > 0) {
    std::string big = MakeJob(root + "/rss", rss_shards);
    double startup = 0;
    MasterProcess m = StartMaster(baton, big, root + "/rss/state", &startup);
    baton::ProcessStats ps = baton::ReadProcessStats(m.pid);
    std::printf("pending_shards=%lld master_rss_mb=%.1f startup_s=%.2f\n",
                static_cast<long long>(rss_shards), static_cast<double>(ps.rss_bytes) / 1048576.0,
                startup);
    StopMaster(m);
  }
  std::filesystem::remove_all(root);
  return 0;
}
