// Rendezvous on the master with real processes: workers of a data-parallel job (a wordcount whose
// workers all-reduce after every shard, rendezvous_worker.cc) form generations through the
// master, bootstrap gloo through its KV store, and re-form when a member is SIGKILLed or the
// master is. rendezvous.timeout_ms is 10 minutes in every test: a re-formation that waited for a
// timeout instead of knowing who is alive would run past the test's own limit.
#include <signal.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "job_harness.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

struct Step {
  int64_t gen = 0;
  int rank = 0, size = 0, sum = 0;
};

struct WorkerLog {
  std::vector<Step> steps;
  std::vector<std::string> end_reasons;
};

// Every worker's log, by file stem ("node-0_1").
std::map<std::string, WorkerLog> ReadLogs(const std::string& dir) {
  std::map<std::string, WorkerLog> logs;
  const std::regex step(R"(step gen=(\d+) rank=(\d+) size=(\d+) sum=(\d+))");
  const std::regex ended(R"(ended gen=\d+ reason=(.*))");
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() != ".log") continue;
    WorkerLog& log = logs[e.path().stem().string()];
    std::ifstream in(e.path());
    std::string line;
    std::smatch m;
    while (std::getline(in, line)) {
      if (std::regex_match(line, m, step)) {
        log.steps.push_back({std::stoll(m[1]), std::stoi(m[2]), std::stoi(m[3]), std::stoi(m[4])});
      } else if (std::regex_match(line, m, ended)) {
        log.end_reasons.push_back(m[1]);
      }
    }
  }
  return logs;
}

pid_t ReadPid(const std::string& path) {
  std::ifstream in(path);
  pid_t pid = 0;
  in >> pid;
  return pid;
}

class RendezvousJob : public ::testing::Test {
 protected:
  WordcountJobOptions Options(int nodes, int per_node) {
    WordcountJobOptions o;
    o.lines = 16000;
    o.records_per_shard = 250;
    o.nodes = nodes;
    o.workers_per_node = per_node;
    o.delay_us_per_record = 600;  // ~150 ms per shard: the job runs for seconds
    o.worker_bin = RDZV_WORKER_BIN;
    o.extra_yaml = "rendezvous:\n  timeout_ms: 600000\n";
    return o;
  }
  void UseLogDir(WordcountJobOptions& o, const std::string& dir) {
    fs::create_directories(dir);
    o.extra_env_yaml = "    RDZV_LOG_DIR: \"" + dir + "\"\n";
  }
  static void ExpectExactOutput(const WordcountJob& job) {
    auto got = job.OutputCounts();
    EXPECT_TRUE(got == job.expected()) << "output word counts differ from the input's";
  }
  // Every step agreed with its generation: the all-reduce counted exactly its members, and every
  // member of a generation reported the same size.
  static void ExpectConsistentSteps(const std::map<std::string, WorkerLog>& logs) {
    std::map<int64_t, int> size_of;
    for (const auto& [who, log] : logs) {
      for (const Step& s : log.steps) {
        EXPECT_EQ(s.sum, s.size) << who << " gen " << s.gen;
        auto [it, fresh] = size_of.emplace(s.gen, s.size);
        EXPECT_EQ(it->second, s.size) << who << " disagrees on the size of gen " << s.gen;
        EXPECT_LT(s.rank, s.size);
      }
    }
  }
  std::string scratch_ = "/tmp/baton-rdzv-" + std::to_string(::getpid());
  void TearDown() override {
    std::error_code ec;
    if (!std::getenv("KEEP")) fs::remove_all(scratch_, ec);
  }
};

TEST_F(RendezvousJob, KilledWorkerIsReplacedInANewGenerationOfTheFullSize) {
  WordcountJobOptions o = Options(2, 2);
  UseLogDir(o, scratch_ + "/kill-worker");
  WordcountJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(8)) << job.ReadRunLog();
  const pid_t victim = ReadPid(scratch_ + "/kill-worker/node-1_0.pid");
  ASSERT_GT(victim, 0);
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);

  const auto logs = ReadLogs(scratch_ + "/kill-worker");
  ASSERT_EQ(logs.size(), 4u);
  ExpectConsistentSteps(logs);
  // Generation 1 held all four; after the kill a later generation held all four again (the agent
  // restarted node-1/0 and the survivors waited for it, not for a timeout).
  bool first_full = false, later_full = false;
  std::set<std::string> reasons;
  for (const auto& [who, log] : logs) {
    for (const Step& s : log.steps) {
      first_full |= s.gen == 1 && s.size == 4;
      later_full |= s.gen > 1 && s.size == 4;
    }
    reasons.insert(log.end_reasons.begin(), log.end_reasons.end());
  }
  EXPECT_TRUE(first_full);
  EXPECT_TRUE(later_full) << job.ReadRunLog();
  bool named = false;
  for (const std::string& r : reasons) {
    named |= r.find("node-1/0") != std::string::npos &&
             (r.find("killed by signal 9") != std::string::npos ||
              r.find("restarted") != std::string::npos);
  }
  EXPECT_TRUE(named) << "no generation ended naming the killed worker";
}

TEST_F(RendezvousJob, KilledMasterLeavesTheGenerationAndItsStoreIntact) {
  WordcountJobOptions o = Options(1, 2);
  UseLogDir(o, scratch_ + "/kill-master");
  WordcountJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(6)) << job.ReadRunLog();
  const pid_t master = job.MasterPid();
  ASSERT_GT(master, 0);
  ASSERT_EQ(::kill(master, SIGKILL), 0);
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);
  EXPECT_NE(job.ReadRunLog().find("restart"), std::string::npos) << job.ReadRunLog();

  const auto logs = ReadLogs(scratch_ + "/kill-master");
  ASSERT_EQ(logs.size(), 2u);
  ExpectConsistentSteps(logs);
  // The workers kept training in generation 1 through the master's death: the only generation
  // ends are the job's own end (a worker done with the data leaves).
  for (const auto& [who, log] : logs) {
    ASSERT_FALSE(log.steps.empty()) << who;
    EXPECT_EQ(log.steps.front().gen, 1) << who;
    for (const std::string& r : log.end_reasons) {
      EXPECT_NE(r.find("exited with code 0"), std::string::npos) << who << ": " << r;
    }
  }
}

TEST_F(RendezvousJob, KilledAgentTakesItsNodesWorkersAndTheSurvivorsReformWithTheNewOnes) {
  WordcountJobOptions o = Options(2, 1);
  o.node_dead_ms = 1500;
  UseLogDir(o, scratch_ + "/kill-agent");
  WordcountJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(6)) << job.ReadRunLog();
  const pid_t agent = job.AgentPid("node-1");
  ASSERT_GT(agent, 0);
  ASSERT_EQ(::kill(agent, SIGKILL), 0);  // its worker dies with it (parent-death signal)
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);

  const auto logs = ReadLogs(scratch_ + "/kill-agent");
  ASSERT_EQ(logs.size(), 2u);
  ExpectConsistentSteps(logs);
  // `baton run` restarted the agent, whose new worker joined the survivor in a later generation.
  const WorkerLog& survivor = logs.at("node-0_0");
  ASSERT_FALSE(survivor.end_reasons.empty());
  int64_t last = 0;
  int last_size = 0;
  for (const Step& s : survivor.steps) last = s.gen, last_size = s.size;
  EXPECT_GT(last, 1);
  EXPECT_EQ(last_size, 2);
}

TEST_F(RendezvousJob, ScalingEndsTheGenerationAndTheNextHoldsTheNewWorkerCount) {
  WordcountJobOptions o = Options(1, 2);
  UseLogDir(o, scratch_ + "/scale");
  WordcountJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForCommittedParts(4)) << job.ReadRunLog();
  std::string out;
  ASSERT_EQ(
      RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", "3"}, &out), 0)
      << out;
  ASSERT_EQ(job.Wait(), 0) << job.ReadRunLog();
  ExpectExactOutput(job);

  const auto logs = ReadLogs(scratch_ + "/scale");
  ASSERT_EQ(logs.size(), 3u);  // the third worker started and took part
  ExpectConsistentSteps(logs);
  bool grown = false;
  for (const Step& s : logs.at("node-0_2").steps) grown |= s.size == 3;
  EXPECT_TRUE(grown);
  bool scaled = false;
  for (const std::string& r : logs.at("node-0_0").end_reasons) {
    scaled |= r.find("scaled to 3 worker(s) per node") != std::string::npos ||
              r.find("node-0/2 joined") != std::string::npos;
  }
  EXPECT_TRUE(scaled);
}

}  // namespace
}  // namespace baton::testing
