// RunAgent end to end against a real gRPC server on loopback that plays the master's NodeService.
#include "agent/agent.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/grpc_util.h"
#include "common/job_limits.h"

namespace baton::agent {
namespace {

namespace pb = ::baton::v1;
using std::chrono::milliseconds;

constexpr char kToken[] = "s3cret-token";

// A stand-in master: hands out a launch, records every call, and answers heartbeats with whatever
// `on_heartbeat` decides. Calls without the right token are refused like the real master does.
class FakeMaster final : public pb::NodeService::Service {
 public:
  explicit FakeMaster(pb::WorkerLaunch launch) : launch_(std::move(launch)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeMaster() override { server_->Shutdown(std::chrono::system_clock::now()); }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  grpc::Status RegisterNode(grpc::ServerContext* ctx, const pb::RegisterNodeRequest* req,
                            pb::RegisterNodeReply* reply) override {
    if (auto s = CheckToken(ctx, kToken); !s.ok()) return s;
    std::lock_guard lock(mu_);
    registers.push_back(*req);
    reply->set_job_id("job-7");
    reply->set_node_rank(2);
    *reply->mutable_launch() = launch_;
    reply->set_node_workers(launch_.workers_per_node());
    reply->set_heartbeat_interval_ms(30);
    reply->set_master_unreachable_ms(7777);  // the spec's timeouts.master_unreachable_ms
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const pb::HeartbeatRequest* req,
                         pb::HeartbeatReply* reply) override {
    if (auto s = CheckToken(ctx, kToken); !s.ok()) return s;
    std::lock_guard lock(mu_);
    heartbeats.push_back(*req);
    if (on_heartbeat) on_heartbeat(*this, *reply);
    return grpc::Status::OK;
  }

  grpc::Status ReportExit(grpc::ServerContext* ctx, const pb::ReportExitRequest* req,
                          pb::ReportExitReply*) override {
    if (auto s = CheckToken(ctx, kToken); !s.ok()) return s;
    std::lock_guard lock(mu_);
    exits.push_back(*req);
    return grpc::Status::OK;
  }

  // Guarded by mu_ (the server's threads write them while the agent runs).
  std::mutex mu_;
  std::vector<pb::RegisterNodeRequest> registers;
  std::vector<pb::HeartbeatRequest> heartbeats;
  std::vector<pb::ReportExitRequest> exits;
  std::function<void(FakeMaster&, pb::HeartbeatReply&)> on_heartbeat;  // called under mu_

 private:
  pb::WorkerLaunch launch_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

pb::WorkerLaunch ShellLaunch(const std::string& script, int workers) {
  pb::WorkerLaunch l;
  l.add_argv("/bin/sh");
  l.add_argv("-c");
  l.add_argv(script);
  l.set_workers_per_node(workers);
  l.set_restart_budget(2);
  l.set_restart_backoff_ms(20);
  l.set_restart_backoff_max_ms(40);
  l.set_stop_grace_ms(500);
  return l;
}

AgentOptions Options(const std::string& address) {
  AgentOptions o;
  o.master_address = address;
  o.token = kToken;
  o.node_id = "node-a";
  o.master_unreachable = milliseconds(3000);
  o.retry_backoff = {milliseconds(20), milliseconds(100), 2.0, 0.2};
  o.poll_interval = milliseconds(10);
  return o;
}

std::filesystem::path TempDir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / (name + "_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

TEST(AgentTest, WorkersGetIdentityAndAgentReturnsOkWhenAllFinish) {
  auto dir = TempDir("agent_env");
  FakeMaster master(ShellLaunch(
      "echo \"$BATON_JOB_ID $BATON_NODE_ID $BATON_NODE_RANK $BATON_LOCAL_RANK $BATON_GLOBAL_RANK "
      "$BATON_WORKER_ID $BATON_MASTER_ADDR $BATON_JOB_TOKEN $BATON_AGENT_PID "
      "$BATON_MASTER_UNREACHABLE_MS $EXTRA\" > " +
          dir.string() + "/w$BATON_LOCAL_RANK",
      2));
  std::atomic<bool> stop{false};
  Status s = RunAgent(Options(master.address()), stop);
  ASSERT_TRUE(s.ok()) << s.ToString();

  for (int rank = 0; rank < 2; ++rank) {
    std::ifstream in(dir / ("w" + std::to_string(rank)));
    std::string line;
    std::getline(in, line);
    std::string want = "job-7 node-a 2 " + std::to_string(rank) + " " +
                       std::to_string(2 * 2 + rank) + " node-a/" + std::to_string(rank) + " " +
                       master.address() + " " + kToken + " " + std::to_string(getpid()) + " 3000 ";
    EXPECT_EQ(line, want);
  }
  std::lock_guard lock(master.mu_);
  ASSERT_EQ(master.registers.size(), 1u);
  EXPECT_EQ(master.registers[0].node_id(), "node-a");
  EXPECT_EQ(master.registers[0].agent_pid(), getpid());
  ASSERT_EQ(master.exits.size(), 2u);
  for (const auto& e : master.exits) {
    EXPECT_EQ(e.kind(), pb::EXIT_KIND_EXITED);
    EXPECT_EQ(e.exit_code(), 0);
    EXPECT_FALSE(e.will_restart());
  }
  std::filesystem::remove_all(dir);
}

TEST(AgentTest, LaunchEnvAndWorkingDirReachWorkers) {
  auto dir = TempDir("agent_wd");
  auto launch = ShellLaunch("echo \"$EXTRA\" > out", 1);
  (*launch.mutable_env())["EXTRA"] = "from-spec";
  launch.set_working_dir(dir.string());
  FakeMaster master(launch);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(RunAgent(Options(master.address()), stop).ok());
  std::ifstream in(dir / "out");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "from-spec");
  std::filesystem::remove_all(dir);
}

TEST(AgentTest, HeartbeatsReportWorkersAndStopActionStopsThem) {
  FakeMaster master(ShellLaunch("exec sleep 100", 2));
  master.on_heartbeat = [](FakeMaster& m, pb::HeartbeatReply& reply) {
    if (m.heartbeats.size() == 3) reply.add_actions()->set_kind(pb::Action::KIND_STOP);
  };
  std::atomic<bool> stop{false};
  const int64_t t0 = MonoMillis();
  Status s = RunAgent(Options(master.address()), stop);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_LT(MonoMillis() - t0, 3000);

  std::lock_guard lock(master.mu_);
  ASSERT_GE(master.heartbeats.size(), 3u);
  const auto& hb = master.heartbeats[1];
  EXPECT_EQ(hb.node_id(), "node-a");
  ASSERT_EQ(hb.workers_size(), 2);
  for (const auto& w : hb.workers()) {
    EXPECT_EQ(w.phase(), pb::WORKER_PHASE_RUNNING);
    EXPECT_GT(w.pid(), 0);
    EXPECT_GT(w.rss_bytes(), 0);
  }
  ASSERT_EQ(master.exits.size(), 2u);
  for (const auto& e : master.exits) {
    EXPECT_EQ(e.kind(), pb::EXIT_KIND_SIGNALED);
    EXPECT_EQ(e.signal(), SIGTERM);
    EXPECT_FALSE(e.will_restart());
    EXPECT_NE(kill(e.pid(), 0), 0);  // reaped: the pid no longer exists
  }
  // The last heartbeat shows the final phases.
  for (const auto& w : master.heartbeats.back().workers()) {
    EXPECT_EQ(w.phase(), pb::WORKER_PHASE_STOPPED);
  }
}

TEST(AgentTest, ReregisterKeepsWorkersRunning) {
  FakeMaster master(ShellLaunch("exec sleep 100", 1));
  master.on_heartbeat = [](FakeMaster& m, pb::HeartbeatReply& reply) {
    if (m.heartbeats.size() == 2) reply.set_reregister(true);
    if (m.registers.size() == 2 && m.heartbeats.size() >= 4) {
      reply.add_actions()->set_kind(pb::Action::KIND_STOP);
    }
  };
  std::atomic<bool> stop{false};
  ASSERT_TRUE(RunAgent(Options(master.address()), stop).ok());
  std::lock_guard lock(master.mu_);
  EXPECT_EQ(master.registers.size(), 2u);
  ASSERT_GE(master.heartbeats.size(), 4u);
  // The same worker process throughout: re-registration does not restart workers.
  const int first_pid = master.heartbeats[0].workers(0).pid();
  EXPECT_EQ(master.heartbeats[3].workers(0).pid(), first_pid);
  EXPECT_EQ(master.heartbeats[3].workers(0).restarts(), 0);
}

TEST(AgentTest, RestartAndScaleActionsAreCarriedOut) {
  FakeMaster master(ShellLaunch("exec sleep 100", 1));
  master.on_heartbeat = [](FakeMaster& m, pb::HeartbeatReply& reply) {
    const auto& last = m.heartbeats.back();
    if (m.heartbeats.size() == 1) {
      auto* a = reply.add_actions();
      a->set_kind(pb::Action::KIND_SET_WORKER_COUNT);
      a->set_worker_count(3);
    } else if (m.heartbeats.size() == 3) {
      auto* a = reply.add_actions();
      a->set_kind(pb::Action::KIND_RESTART_WORKER);
      a->set_local_rank(1);
    } else if (m.heartbeats.size() > 3 && last.workers_size() == 3 &&
               last.workers(1).restarts() == 1 && last.workers(1).pid() > 0) {
      reply.add_actions()->set_kind(pb::Action::KIND_STOP);
    }
  };
  std::atomic<bool> stop{false};
  ASSERT_TRUE(RunAgent(Options(master.address()), stop).ok());
  std::lock_guard lock(master.mu_);
  ASSERT_GE(master.heartbeats.size(), 4u);
  EXPECT_EQ(master.heartbeats[2].workers_size(), 3);
  // Exits: rank 1 for the restart (will_restart), then all three for the stop.
  ASSERT_EQ(master.exits.size(), 4u);
  EXPECT_EQ(master.exits[0].local_rank(), 1);
  EXPECT_TRUE(master.exits[0].will_restart());
}

TEST(AgentTest, ActionsOutOfRangeAreIgnoredAndTheAgentCarriesOn) {
  FakeMaster master(ShellLaunch("exec sleep 100", 1));
  pid_t first_pid = 0;
  master.on_heartbeat = [&](FakeMaster& m, pb::HeartbeatReply& reply) {
    const auto& last = m.heartbeats.back();
    if (m.heartbeats.size() == 1) {
      first_pid = last.workers(0).pid();
      for (int count : {2000000000, kMaxWorkersPerNode + 1, -5}) {
        auto* a = reply.add_actions();
        a->set_kind(pb::Action::KIND_SET_WORKER_COUNT);
        a->set_worker_count(count);
      }
      auto* a = reply.add_actions();
      a->set_kind(pb::Action::KIND_RESTART_WORKER);
      a->set_local_rank(99999);
    } else if (m.heartbeats.size() == 3) {
      reply.add_actions()->set_kind(pb::Action::KIND_STOP);
    }
  };
  std::atomic<bool> stop{false};
  Status s = RunAgent(Options(master.address()), stop);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::lock_guard lock(master.mu_);
  ASSERT_GE(master.heartbeats.size(), 3u);
  // The worker the agent started is the one it still ran, untouched, when told to stop.
  ASSERT_EQ(master.heartbeats[2].workers_size(), 1);
  EXPECT_EQ(master.heartbeats[2].workers(0).pid(), first_pid);
  EXPECT_EQ(master.heartbeats[2].workers(0).restarts(), 0);
  ASSERT_EQ(master.exits.size(), 1u);
  EXPECT_EQ(master.exits[0].pid(), first_pid);
}

TEST(AgentTest, RegistrationAskingForTooManyWorkersIsRefused) {
  FakeMaster master(ShellLaunch("exec sleep 100", 2000000000));
  std::atomic<bool> stop{false};
  Status s = RunAgent(Options(master.address()), stop);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find(std::to_string(kMaxWorkersPerNode)), std::string::npos)
      << s.ToString();
}

TEST(AgentTest, WorkersGetTheMastersUnreachableWindowUnlessTheAgentWasGivenOne) {
  auto dir = TempDir("agent_unreachable");
  FakeMaster master(ShellLaunch("echo $BATON_MASTER_UNREACHABLE_MS > " + dir.string() + "/w", 1));
  auto o = Options(master.address());
  o.master_unreachable.reset();
  std::atomic<bool> stop{false};
  Status s = RunAgent(o, stop);
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::ifstream in(dir / "w");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "7777");
  std::filesystem::remove_all(dir);
}

TEST(AgentTest, StopFlagStopsWorkersAndReturnsOk) {
  FakeMaster master(ShellLaunch("exec sleep 100", 2));
  std::atomic<bool> stop{false};
  master.on_heartbeat = [&stop](FakeMaster& m, pb::HeartbeatReply&) {
    if (m.heartbeats.size() == 2) stop = true;  // as a SIGTERM handler would
  };
  ASSERT_TRUE(RunAgent(Options(master.address()), stop).ok());
  std::lock_guard lock(master.mu_);
  ASSERT_EQ(master.exits.size(), 2u);
  for (const auto& e : master.exits) EXPECT_FALSE(e.will_restart());
}

TEST(AgentTest, EveryWorkerGivingUpIsAnError) {
  FakeMaster master(ShellLaunch("exit 3", 2));
  std::atomic<bool> stop{false};
  Status s = RunAgent(Options(master.address()), stop);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  std::lock_guard lock(master.mu_);
  EXPECT_EQ(master.exits.size(), 6u);  // 2 workers x (first run + 2 restarts)
  int restarting = 0;
  for (const auto& e : master.exits) restarting += e.will_restart() ? 1 : 0;
  EXPECT_EQ(restarting, 4);
}

TEST(AgentTest, WrongTokenIsRefused) {
  FakeMaster master(ShellLaunch("exit 0", 1));
  auto o = Options(master.address());
  o.token = "wrong";
  std::atomic<bool> stop{false};
  Status s = RunAgent(o, stop);
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied) << s.ToString();
}

TEST(AgentTest, UnreachableMasterIsAnErrorAfterTheWindow) {
  auto o = Options("127.0.0.1:1");  // nothing listens on port 1
  o.master_unreachable = milliseconds(300);
  std::atomic<bool> stop{false};
  const int64_t t0 = MonoMillis();
  Status s = RunAgent(o, stop);
  const int64_t took = MonoMillis() - t0;
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  EXPECT_GE(took, 300);
  EXPECT_LT(took, 5000);
}

TEST(AgentTest, MasterLostAfterStartStopsWorkersAndFails) {
  auto master = std::make_unique<FakeMaster>(ShellLaunch("exec sleep 100", 1));
  std::atomic<bool> master_gone{false};
  master->on_heartbeat = [&](FakeMaster& m, pb::HeartbeatReply&) {
    if (m.heartbeats.size() == 2) master_gone = true;
  };
  auto o = Options(master->address());
  o.master_unreachable = milliseconds(400);
  std::atomic<bool> stop{false};
  pid_t worker = 0;
  std::thread killer([&] {
    while (!master_gone) std::this_thread::sleep_for(milliseconds(5));
    {
      std::lock_guard lock(master->mu_);
      worker = master->heartbeats[0].workers(0).pid();
    }
    master.reset();
  });
  Status s = RunAgent(o, stop);
  killer.join();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable) << s.ToString();
  ASSERT_GT(worker, 0);
  EXPECT_NE(kill(worker, 0), 0);  // stopped and reaped
}

}  // namespace
}  // namespace baton::agent
