// The master under abuse: paused, out of disk, talked to by a client that lies, restarted. Real
// master, agents and workers on loopback; real signals; a real full filesystem (a small tmpfs).
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/spawn.h"
#include "baton/v1/baton.grpc.pb.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/grpc_util.h"
#include "common/secret.h"
#include "job_harness.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

void ExpectExactOutput(const WordcountJob& job) {
  auto got = job.OutputCounts();
  EXPECT_EQ(got.size(), job.expected().size());
  EXPECT_TRUE(got == job.expected()) << "output word counts differ from the input's";
}

// A client of the job's master holding the job token, as any worker does.
struct Client {
  explicit Client(const std::string& state_dir) {
    for (int i = 0; i < 500 && address.empty(); ++i) {
      auto a = ReadFile(state_dir + "/master.addr");
      if (a.ok() && !a->empty()) address = a->substr(0, a->find('\n'));
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto t = LoadSecret(state_dir + "/token");
    if (t.ok()) token = *t;
    auto channel = MakeChannel(address);
    nodes = v1::NodeService::NewStub(channel);
    shards = v1::ShardService::NewStub(channel);
    jobs = v1::JobService::NewStub(channel);
    rendezvous = v1::RendezvousService::NewStub(channel);
  }
  bool ok() const { return !address.empty() && !token.empty(); }
  template <typename Call>
  grpc::Status Do(Call call) {
    grpc::ClientContext ctx;
    PrepareContext(ctx, token);
    return call(&ctx);
  }
  grpc::Status Register(const std::string& node, v1::RegisterNodeReply* reply) {
    v1::RegisterNodeRequest req;
    req.set_node_id(node);
    req.set_hostname("test");
    req.set_agent_pid(::getpid());
    return Do([&](grpc::ClientContext* c) { return nodes->RegisterNode(c, req, reply); });
  }
  v1::JobStatus Status() {
    v1::JobStatus st;
    grpc::Status s =
        Do([&](grpc::ClientContext* c) { return jobs->GetStatus(c, v1::GetStatusRequest(), &st); });
    EXPECT_TRUE(s.ok()) << s.error_message();
    return st;
  }

  std::string address, token;
  std::unique_ptr<v1::NodeService::Stub> nodes;
  std::unique_ptr<v1::ShardService::Stub> shards;
  std::unique_ptr<v1::JobService::Stub> jobs;
  std::unique_ptr<v1::RendezvousService::Stub> rendezvous;
};

TEST(MasterHardening, PausedMasterChargesNoLeaseAndNoNodeForItsOwnAbsence) {
  // Leases and node deadlines of 1.5 s, no retries: one lease charged for the pause fails the job.
  WordcountJob job({.lines = 16000,
                    .records_per_shard = 500,
                    .nodes = 1,
                    .delay_us_per_record = 500,
                    .lease_ms = 1500,
                    .node_dead_ms = 1500,
                    .max_shard_retries = 0});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(3)) << job.ReadRunLog();
  pid_t master = job.MasterPid();
  ASSERT_GT(master, 0);
  ASSERT_EQ(::kill(master, SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(4000));
  ASSERT_EQ(::kill(master, SIGCONT), 0);
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog() << job.ReadStateFile("master.log");
  ExpectExactOutput(job);
  std::string log = job.ReadStateFile("master.log");
  EXPECT_NE(log.find("the master did not run for"), std::string::npos) << log;
  EXPECT_EQ(log.find("expired"), std::string::npos) << log;
  EXPECT_EQ(log.find("declared dead"), std::string::npos) << log;
}

// A tmpfs of `megabytes` at `path`; unmounted when the test ends.
class SmallDisk {
 public:
  SmallDisk(const std::string& path, int megabytes) : path_(path) {
    fs::create_directories(path);
    std::string opts = "size=" + std::to_string(megabytes) + "m";
    mounted_ = ::mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) == 0;
    if (!mounted_) error_ = std::strerror(errno);
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  // Writes zeros until the filesystem is full.
  void Fill() {
    std::ofstream f(path_ + "/filler", std::ios::binary);
    std::string block(64 * 1024, '\0');
    while (f.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  void Free() { fs::remove(path_ + "/filler"); }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

// Mounting needs root (CAP_SYS_ADMIN). CI runs as root, so there a failed mount is a failure.
#define REQUIRE_MOUNTED(disk)                                                                 \
  do {                                                                                        \
    if (!(disk).mounted()) {                                                                  \
      const char* ci = std::getenv("CI");                                                     \
      if (ci != nullptr && std::string(ci) == "true") {                                       \
        FAIL() << "cannot mount a tmpfs (needs root): " << (disk).error();                    \
      }                                                                                       \
      GTEST_SKIP() << "cannot mount a tmpfs (needs root) to fill a disk: " << (disk).error(); \
    }                                                                                         \
  } while (0)

TEST(MasterHardening, FullStateDiskStopsTheJobWithTheCauseAndARerunResumes) {
  WordcountJob job({.lines = 24000,
                    .records_per_shard = 200,
                    .nodes = 1,
                    .delay_us_per_record = 300,
                    .lease_ms = 5000});
  SmallDisk disk(job.state_dir(), 4);
  REQUIRE_MOUNTED(disk);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(5)) << job.ReadRunLog();
  disk.Fill();
  int rc = job.Wait(std::chrono::seconds(120));
  std::string log = job.ReadRunLog();
  EXPECT_EQ(rc, 4) << log;
  // The master's own log is on the full disk; `baton run` says what happened.
  EXPECT_NE(log.find("cannot be written"), std::string::npos) << log;
  EXPECT_TRUE(job.MasterPid() == 0) << "the master must stop, not hang";
  EXPECT_LT(job.CommittedParts(), 120);
  disk.Free();
  ASSERT_EQ(job.Run(), 0) << job.ReadRunLog();
  EXPECT_EQ(job.CommittedParts(), 120);
  ExpectExactOutput(job);
}

TEST(MasterHardening, FullOutputDiskNamesTheCauseAndARerunRetriesTheDeadLetteredShards) {
  WordcountJob job({.lines = 12000,
                    .records_per_shard = 200,
                    .nodes = 1,
                    .delay_us_per_record = 500,
                    .max_shard_retries = 1});
  SmallDisk disk(job.output_dir(), 1);
  REQUIRE_MOUNTED(disk);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(2)) << job.ReadRunLog();
  disk.Fill();  // from now on every attempt to stage output fails
  EXPECT_EQ(job.Wait(), 1) << job.ReadRunLog();
  // The cause, not "worker exited with code 1", is in the dead-letter list.
  EXPECT_NE(job.ReadStateFile("master.log").find("No space left on device"), std::string::npos)
      << job.ReadStateFile("master.log");
  int staged = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(job.output_dir() + "/.staging", ec)) {
    (void)e;
    ++staged;
  }
  EXPECT_EQ(staged, 0) << "staged files of failed attempts are deleted";
  disk.Free();
  ASSERT_EQ(job.Run(), 0) << job.ReadRunLog();
  EXPECT_EQ(job.CommittedParts(), 60);
  ExpectExactOutput(job);
}

TEST(MasterHardening, ALyingClientCannotCommitOthersShardsNorBloatOrForgeAnything) {
  WordcountJob job({.lines = 16000,
                    .records_per_shard = 200,
                    .nodes = 1,
                    .workers_per_node = 1,
                    .delay_us_per_record = 200});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(2)) << job.ReadRunLog();
  Client rogue(job.state_dir());
  ASSERT_TRUE(rogue.ok());

  // Guessed leases: renewal reveals nothing, commit and fail take nothing.
  v1::RenewLeasesRequest renew;
  renew.set_worker_id("rogue/9");
  for (uint64_t shard = 0; shard < 80; ++shard) {
    for (uint64_t token = 1; token < 20; ++token) {
      auto* ref = renew.add_leases();
      ref->set_shard_id(shard);
      ref->set_token(token);
    }
  }
  v1::RenewLeasesReply renewed;
  ASSERT_TRUE(
      rogue
          .Do([&](grpc::ClientContext* c) { return rogue.shards->RenewLeases(c, renew, &renewed); })
          .ok());
  for (const auto& r : renewed.renewals()) EXPECT_FALSE(r.renewed()) << r.shard_id();
  for (uint64_t shard = 0; shard < 80; ++shard) {
    v1::CommitShardRequest commit;
    commit.set_worker_id("rogue/9");
    commit.set_shard_id(shard);
    commit.set_token(shard + 1);
    commit.set_has_output(true);
    v1::CommitShardReply reply;
    auto s = rogue.Do(
        [&](grpc::ClientContext* c) { return rogue.shards->CommitShard(c, commit, &reply); });
    EXPECT_FALSE(s.ok()) << "shard " << shard;
    commit.set_has_output(false);  // "no output" for a shard with records is refused outright
    s = rogue.Do(
        [&](grpc::ClientContext* c) { return rogue.shards->CommitShard(c, commit, &reply); });
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  }

  // Oversized and hostile ids are refused at the boundary.
  v1::RegisterNodeReply reg;
  EXPECT_FALSE(rogue.Register(std::string(3 << 20, 'x'), &reg).ok());
  EXPECT_EQ(rogue.Register(std::string(200, 'x'), &reg).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rogue.Register("evil\n[2026] [info] forged\x1b[31m", &reg).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::ReportProgressRequest progress;
  progress.set_worker_id("ghost/0");
  progress.set_node_id("ghost");
  v1::ReportProgressReply progress_reply;
  EXPECT_FALSE(rogue
                   .Do([&](grpc::ClientContext* c) {
                     return rogue.jobs->ReportProgress(c, progress, &progress_reply);
                   })
                   .ok())
      << "workers of unregistered nodes are not tracked";

  // Gauges: non-finite values, too many, or bad names are refused.
  auto report = [&](const v1::ReportProgressRequest& r) {
    return rogue
        .Do([&](grpc::ClientContext* c) {
          return rogue.jobs->ReportProgress(c, r, &progress_reply);
        })
        .error_code();
  };
  v1::ReportProgressRequest gauges;
  gauges.set_worker_id("node-0/5");
  gauges.set_node_id("node-0");
  (*gauges.mutable_gauges())["train.loss"] = 0.5;
  EXPECT_EQ(report(gauges), grpc::StatusCode::OK);
  (*gauges.mutable_gauges())["train.loss"] = std::nan("");
  EXPECT_EQ(report(gauges), grpc::StatusCode::INVALID_ARGUMENT);
  gauges.mutable_gauges()->clear();
  (*gauges.mutable_gauges())["evil name\n"] = 1;
  EXPECT_EQ(report(gauges), grpc::StatusCode::INVALID_ARGUMENT);
  gauges.mutable_gauges()->clear();
  for (int i = 0; i < 65; ++i) (*gauges.mutable_gauges())["g" + std::to_string(i)] = i;
  EXPECT_EQ(report(gauges), grpc::StatusCode::INVALID_ARGUMENT);

  // Rendezvous: a generation nobody could know, a worker of no registered node, keys and values
  // past their bounds, and a generation that is not active.
  v1::JoinRequest join;
  join.set_worker_id("node-0/7");
  join.set_known_generation(1000);
  v1::JoinReply joined;
  auto join_code = [&] {
    return rogue
        .Do([&](grpc::ClientContext* c) { return rogue.rendezvous->Join(c, join, &joined); })
        .error_code();
  };
  EXPECT_EQ(join_code(), grpc::StatusCode::INVALID_ARGUMENT);
  join.set_known_generation(0);
  join.set_worker_id("ghost/0");
  EXPECT_EQ(join_code(), grpc::StatusCode::UNAVAILABLE);
  v1::KvSetRequest set;
  set.set_generation(1);
  set.set_key(std::string(600, 'k'));
  v1::KvSetReply set_reply;
  auto set_code = [&] {
    return rogue
        .Do([&](grpc::ClientContext* c) { return rogue.rendezvous->KvSet(c, set, &set_reply); })
        .error_code();
  };
  EXPECT_EQ(set_code(), grpc::StatusCode::FAILED_PRECONDITION);  // no generation is active
  v1::KvGetRequest get;
  v1::KvGetReply got;
  EXPECT_EQ(rogue.Do([&](grpc::ClientContext* c) { return rogue.rendezvous->KvGet(c, get, &got); })
                .error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // no keys

  // A failure reason with control characters and invalid UTF-8 is stored escaped and capped.
  v1::LeaseShardRequest lease;
  lease.set_worker_id("rogue/0");
  v1::LeaseShardReply leased;
  ASSERT_TRUE(
      rogue.Do([&](grpc::ClientContext* c) { return rogue.shards->LeaseShard(c, lease, &leased); })
          .ok());
  if (leased.outcome() == v1::LeaseShardReply::OUTCOME_LEASED) {
    v1::FailShardRequest fail;
    fail.set_worker_id("rogue/0");
    fail.set_shard_id(leased.lease().shard_id());
    fail.set_token(leased.lease().token());
    // (Invalid UTF-8 cannot even be sent: protobuf refuses it in string fields on both ends.)
    fail.set_reason("bad\u009b\n[info] forged line\x1b[2J" + std::string(100000, 'r'));
    v1::FailShardReply failed;
    EXPECT_TRUE(
        rogue.Do([&](grpc::ClientContext* c) { return rogue.shards->FailShard(c, fail, &failed); })
            .ok());
  }

  v1::JobStatus st = rogue.Status();  // still answers, and every string in it is valid
  EXPECT_EQ(st.nodes_size(), 1);
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog() << job.ReadStateFile("master.log")
                           << job.ReadStateFile("node-0.log");
  EXPECT_EQ(job.CommittedParts(), 80);
  ExpectExactOutput(job);
  std::string log = job.ReadStateFile("master.log");
  EXPECT_EQ(log.find('\x1b'), std::string::npos) << "terminal escapes reached the log";
  EXPECT_EQ(log.find("\n[info] forged"), std::string::npos) << "a forged log line";
  EXPECT_NE(log.find("bad\\xc2\\x9b\\x0a[info] forged line\\x1b[2J"), std::string::npos) << log;
}

TEST(MasterHardening, NodeRanksCountersAndRunningTimeSurviveAMasterRestart) {
  WordcountJob job({.lines = 2000, .records_per_shard = 100});
  auto start_master = [&] {
    agent::SpawnRequest req;
    req.argv = {BATON_BIN, "master", "--spec", job.spec_path()};
    req.output_path = job.state_dir() + "-master.log";
    fs::create_directories(job.state_dir());
    fs::remove(job.state_dir() + "/master.addr");
    auto pid = agent::SpawnProcess(req);
    EXPECT_TRUE(pid.ok());
    return pid.ok() ? *pid : -1;
  };
  pid_t master = start_master();
  std::map<std::string, int32_t> ranks;
  v1::JobStatus before;
  {
    Client c(job.state_dir());
    ASSERT_TRUE(c.ok());
    for (std::string node : {"zeta", "alpha", "mid"}) {
      v1::RegisterNodeReply reply;
      ASSERT_TRUE(c.Register(node, &reply).ok());
      ranks[node] = reply.node_rank();
    }
    EXPECT_EQ(ranks["zeta"], 0);
    EXPECT_EQ(ranks["alpha"], 1);
    for (int i = 0; i < 3; ++i) {  // three leases granted
      v1::LeaseShardRequest lease;
      lease.set_worker_id("zeta/" + std::to_string(i));
      v1::LeaseShardReply reply;
      ASSERT_TRUE(c.Do([&](grpc::ClientContext* ctx) {
                     return c.shards->LeaseShard(ctx, lease, &reply);
                   }).ok());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // counters persist each second
    before = c.Status();
  }
  ::kill(master, SIGKILL);
  ::waitpid(master, nullptr, 0);
  master = start_master();
  {
    Client c(job.state_dir());
    ASSERT_TRUE(c.ok());
    // In another order than before; a new node gets the next rank, never a taken one.
    for (std::string node : {"mid", "newcomer", "alpha", "zeta"}) {
      v1::RegisterNodeReply reply;
      ASSERT_TRUE(c.Register(node, &reply).ok());
      if (node == "newcomer") {
        EXPECT_EQ(reply.node_rank(), 3);
      } else {
        EXPECT_EQ(reply.node_rank(), ranks[node]) << node;
      }
    }
    v1::JobStatus after = c.Status();
    EXPECT_EQ(after.leases_granted(), 3u);
    // Running time is persisted every second: a SIGKILL loses at most that much of it.
    EXPECT_GE(after.elapsed_s(), before.elapsed_s() - 1.1);
    EXPECT_GE(after.elapsed_s(), 1.4);
  }
  ::kill(master, SIGKILL);
  ::waitpid(master, nullptr, 0);
}

}  // namespace
}  // namespace baton::testing
