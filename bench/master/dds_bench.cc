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

// separate: LeaseShard then CommitShard per shard (two round trips), as a plain client would.
// with_commit: CommitShard(lease_next) returns the next lease (one round trip), as the SDK does.
void RunClients(const MasterProcess& m, int clients, double seconds, bool lease_with_commit) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(clients));
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto channel = baton::MakeChannel(m.address);
      auto stub = baton::v1::ShardService::NewStub(channel);
      std::string worker = "bench/" + std::to_string(c);
      auto& lat = latencies[static_cast<size_t>(c)];
      baton::v1::LeaseShardReply lrep;
      auto lease = [&] {
        baton::v1::LeaseShardRequest lreq;
        lreq.set_worker_id(worker);
        lreq.set_node_id("bench");
        grpc::ClientContext lctx;
        baton::PrepareContext(lctx, m.token);
        return stub->LeaseShard(&lctx, lreq, &lrep).ok() &&
               lrep.outcome() == baton::v1::LeaseShardReply::OUTCOME_LEASED;
      };
      if (lease_with_commit && !lease()) {
        ++errors;
        return;
      }
      while (!stop) {
        double t0 = baton::MonoSeconds();
        if (!lease_with_commit && !lease()) {
          ++errors;
          break;
        }
        baton::v1::CommitShardRequest creq;
        creq.set_worker_id(worker);
        creq.set_shard_id(lrep.lease().shard_id());
        creq.set_token(lrep.lease().token());
        creq.set_lease_next(lease_with_commit);
        baton::v1::CommitShardReply crep;
        grpc::ClientContext cctx;
        baton::PrepareContext(cctx, m.token);
        if (!stub->CommitShard(&cctx, creq, &crep).ok()) {
          ++errors;
          break;
        }
        if (lease_with_commit) {
          lrep = crep.next();
          if (lrep.outcome() != baton::v1::LeaseShardReply::OUTCOME_LEASED) {
            ++errors;
            break;
          }
        }
        lat.push_back((baton::MonoSeconds() - t0) * 1000.0);
      }
    });
  }
  double t0 = baton::MonoSeconds();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  double elapsed = baton::MonoSeconds() - t0;
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf(
      "mode=%s clients=%d pairs_per_s=%.0f p50_ms=%.3f p99_ms=%.3f errors=%d "
      "durable=sqlite_wal\n",
      lease_with_commit ? "with_commit" : "separate", clients,
      static_cast<double>(all.size()) / elapsed, pct(0.50), pct(0.99), errors.load());
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
