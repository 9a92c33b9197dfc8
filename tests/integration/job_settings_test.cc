// The job's settings reach every process and are enforced where requests enter, with real
// processes: short leases are renewed from the first moment, timeouts.master_unreachable_ms
// reaches agents and workers, a master with no agent left ends the job, and worker counts are
// bounded at the CLI, the master and the agent.
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "agent/spawn.h"
#include "common/job_limits.h"
#include "common/secret.h"
#include "job_harness.h"
#include "launch/status_client.h"

namespace baton::testing {
namespace {

void ExpectExactOutput(const WordcountJob& job) {
  auto got = job.OutputCounts();
  EXPECT_EQ(got.size(), job.expected().size());
  EXPECT_TRUE(got == job.expected()) << "output word counts differ from the input's";
}

std::string ReadProcFile(pid_t pid, const char* what) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + what, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(JobSettings, ShardWorkLongerThanAShortLeaseKeepsItsLease) {
  // Each shard takes ~3 s, twice the 1.5 s lease, and no retry is allowed: only renewals that
  // start with the first lease (and every lease that arrives with a commit) keep the job alive.
  WordcountJob job({.lines = 12000,
                    .records_per_shard = 3000,
                    .nodes = 1,
                    .workers_per_node = 2,
                    .delay_us_per_record = 1000,
                    .lease_ms = 1500,
                    .max_shard_retries = 0});
  ASSERT_EQ(job.Run(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
  EXPECT_NE(job.ReadRunLog().find("expired 0,"), std::string::npos) << job.ReadRunLog();
}

TEST(JobSettings, MasterUnreachableMsReachesAgentsAndWorkers) {
  WordcountJob job({.lines = 8000,
                    .records_per_shard = 500,
                    .nodes = 1,
                    .delay_us_per_record = 300,
                    .master_unreachable_ms = 4321});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(1)) << job.ReadRunLog();
  std::vector<pid_t> workers = job.WorkerPids();
  ASSERT_FALSE(workers.empty());
  for (pid_t w : workers) {
    std::string env = ReadProcFile(w, "environ");
    EXPECT_NE(env.find(std::string("BATON_MASTER_UNREACHABLE_MS=4321") + '\0'), std::string::npos);
  }
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
}

TEST(JobSettings, AgentsGiveUpOnAPausedMasterAfterTheSpecsTime) {
  // The master is paused for 4 s; the spec lets agents and workers wait 1 s for it. They give
  // up, `baton run` restarts the agents, and the job ends exactly when the master resumes.
  WordcountJob job({.lines = 12000,
                    .records_per_shard = 500,
                    .nodes = 1,
                    .delay_us_per_record = 300,
                    .master_unreachable_ms = 1000});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(2)) << job.ReadRunLog();
  pid_t master = job.MasterPid();
  ASSERT_GT(master, 0);
  ASSERT_EQ(::kill(master, SIGSTOP), 0);
  const bool gave_up = WaitFor(
      [&] {
        return job.ReadStateFile("node-0.log").find("unreachable for 1000 ms") != std::string::npos;
      },
      std::chrono::seconds(30));
  ASSERT_EQ(::kill(master, SIGCONT), 0);
  EXPECT_TRUE(gave_up) << job.ReadStateFile("node-0.log");
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
  EXPECT_NE(job.ReadRunLog().find("agent node-0 exited with code 1; restarting it"),
            std::string::npos)
      << job.ReadRunLog();
}

TEST(JobSettings, MasterWithNoAgentLeftEndsTheJobAndARunResumesIt) {
  // A master and an agent started by hand, as on a cluster. The agent is killed for good: after
  // node_dead_ms and then agents_gone_ms without any agent, the master ends the job (exit 4)
  // instead of waiting for ever, and keeps its state: `baton run` finishes the job.
  WordcountJob job({.lines = 12000,
                    .records_per_shard = 500,
                    .nodes = 1,
                    .delay_us_per_record = 300,
                    .node_dead_ms = 1000,
                    .agents_gone_ms = 1500});
  agent::SpawnRequest master_req;
  master_req.argv = {BATON_BIN, "master", "--spec", job.spec_path()};
  master_req.output_path = job.dir() + "/master-by-hand.log";
  Result<pid_t> master = agent::SpawnProcess(master_req);
  ASSERT_TRUE(master.ok());
  ASSERT_TRUE(
      WaitFor([&] { return !job.ReadStateFile("master.addr").empty(); }, std::chrono::seconds(30)));
  std::string address = job.ReadStateFile("master.addr");
  address = address.substr(0, address.find('\n'));
  agent::SpawnRequest agent_req;
  agent_req.argv = {BATON_BIN, "agent",  "--master",     address,
                    "--node",  "node-0", "--token-file", job.state_dir() + "/token"};
  agent_req.output_path = job.dir() + "/agent-by-hand.log";
  Result<pid_t> agent = agent::SpawnProcess(agent_req);
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE(job.WaitForCommittedParts(2));
  ASSERT_EQ(::kill(*agent, SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(*agent, &st, 0), *agent);

  int code = -1;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (::waitpid(*master, &st, WNOHANG) != *master) return false;
        code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return true;
      },
      std::chrono::seconds(60)))
      << "the master kept waiting with no agent";
  std::ifstream log(job.dir() + "/master-by-hand.log");
  std::stringstream text;
  text << log.rdbuf();
  EXPECT_EQ(code, 4) << text.str();
  EXPECT_NE(text.str().find("no agent alive for 1500 ms"), std::string::npos) << text.str();

  ASSERT_EQ(job.Run(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
}

TEST(JobSettings, WorkerCountsAreBoundedWhereverTheyEnter) {
  WordcountJob job(
      {.lines = 12000, .records_per_shard = 500, .nodes = 1, .delay_us_per_record = 300});
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(2)) << job.ReadRunLog();
  const std::string too_many = "2000000000";
  std::string out;
  EXPECT_EQ(
      RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", too_many}, &out),
      2)
      << out;
  EXPECT_NE(out.find(std::to_string(kMaxWorkersPerNode)), std::string::npos) << out;

  // The master's RPC refuses it too (a client other than the CLI).
  std::string address = job.ReadStateFile("master.addr");
  address = address.substr(0, address.find('\n'));
  Result<std::string> token = LoadSecret(job.state_dir() + "/token");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  Result<int> scaled = launch::ScaleWorkers(address, *token, 2000000000);
  ASSERT_FALSE(scaled.ok());
  EXPECT_EQ(scaled.status().code(), StatusCode::kInvalidArgument) << scaled.status().ToString();

  // Within bounds, scaling works, and the job ends with every word counted once.
  EXPECT_EQ(
      RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", "3"}, &out), 0)
      << out;
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
}

}  // namespace
}  // namespace baton::testing
