// `kind: meta` end to end: real `baton run`, master, agent and baton-meta-worker processes on
// loopback, G-Meta's meta-step under the training runtime. A rank SIGKILLed mid-epoch is
// replaced; the ranks roll back to a flash checkpoint that carries the row-sharded embedding
// table, and every episode is applied exactly once per epoch (the last snapshot's ledger against
// the episode index, counted here). The saved model and table load.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "job_harness.h"
#include "ledger_check.h"
#include "meta/meta_model.h"
#include "meta/sharded_embedding.h"
#include "train/snapshot.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

constexpr int kTasks = 400;
constexpr int kEpochs = 4;

class MetaJobRun {
 public:
  MetaJobRun() {
    char tmpl[] = "/tmp/baton-meta-job-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    name_ = "meta-test-" + dir_.substr(dir_.rfind('-') + 1);
    const std::string py = "/usr/bin/python3 " META_EXAMPLE_DIR;
    std::string out;
    prepared_ =
        RunCommand(
            {"/bin/sh", "-c",
             py + "/generate_tasks.py " + dir_ + "/rows.csv --tasks " + std::to_string(kTasks) +
                 " && " + py + "/export_model.py " + dir_ + "/model.pt && " + BATON_BIN +
                 " meta prepare --input " + dir_ + "/rows.csv --out " + dir_ +
                 "/rows.ep --task-key task --label label --dense d0,d1,d2,d3 --sparse "
                 "c0,c1,c2,c3 --order-by ts"},
            &out) == 0;
    if (!prepared_) ADD_FAILURE() << out;
    std::ofstream(spec()) << "name: " << name_ << "\nkind: meta\nnodes: 1\n"
                          << "input: {paths: [rows.ep.index.csv], format: csv, skip_header: true,"
                          << " records_per_shard: 16, epochs: " << kEpochs << "}\n"
                          << "worker: {per_node: 2, restart_backoff_ms: 100}\n"
                          << "master: {state_dir: state}\n"
                          << "timeouts: {heartbeat_interval_ms: 200}\n"
                          << "meta:\n  model: model.pt\n  episodes: rows.ep\n  save: out/model.pt\n"
                          << "  tasks_per_step: 4\n  order: second\n  inner_steps: 2\n"
                          << "  checkpoint: {every_steps: 10}\n";
  }
  ~MetaJobRun() {
    KillProcessesMentioning(dir_);
    std::error_code ec;
    if (std::getenv("KEEP") == nullptr) fs::remove_all(dir_, ec);
  }
  std::string spec() const { return dir_ + "/job.yaml"; }
  // The names of this job's shared-memory snapshots start with it.
  std::string ShmPrefix() const { return "baton-" + name_ + "-"; }
  std::string dir() const { return dir_; }

  void Start() {
    run_ = StartBatonRun(spec(), dir_ + "/run.log");
    ASSERT_GT(run_, 0);
  }
  int Wait() { return WaitForExit(run_); }
  std::vector<pid_t> Workers() const {
    return ProcessesMatching([&](pid_t, const std::vector<std::string>& cmd) {
      return !cmd.empty() && cmd[0].find("baton-meta-worker") != std::string::npos &&
             std::find(cmd.begin(), cmd.end(), "--check") == cmd.end() &&
             std::any_of(cmd.begin(), cmd.end(),
                         [&](const std::string& a) { return a.find(dir_) != std::string::npos; });
    });
  }
  std::string Logs() const {
    std::string all;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/state", ec)) {
      if (e.path().extension() != ".log") continue;
      std::ifstream in(e.path());
      all += std::string(std::istreambuf_iterator<char>(in), {});
    }
    std::ifstream run(dir_ + "/run.log");
    return all + std::string(std::istreambuf_iterator<char>(run), {});
  }
  // Every episode of the index applied exactly once in every epoch (ledger_check.h).
  void ExpectEveryEpisodeAppliedOncePerEpoch() const {
    ExpectEveryRecordAppliedOncePerEpoch(dir_ + "/state/checkpoints", dir_ + "/rows.ep.index.csv",
                                         kTasks, kEpochs);
  }

 private:
  std::string dir_, name_;
  pid_t run_ = -1;
  bool prepared_ = false;

 public:
  bool prepared() const { return prepared_; }
};

TEST(MetaJob, ARankKilledMidEpochIsReplacedAndEveryEpisodeIsAppliedOncePerEpoch) {
  MetaJobRun job;
  ASSERT_TRUE(job.prepared());
  job.Start();
  ASSERT_TRUE(WaitFor([&] { return job.Logs().find("generation 1: rank") != std::string::npos; },
                      std::chrono::seconds(60)))
      << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto workers = job.Workers();
  ASSERT_EQ(workers.size(), 2u) << job.Logs();
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  ASSERT_EQ(job.Wait(), 0) << job.Logs();
  const std::string logs = job.Logs();
  // The survivor and the replacement met in a later generation that restored trained state.
  const size_t second = logs.find("generation 2: rank");
  ASSERT_NE(second, std::string::npos) << logs;
  const size_t from = logs.find("from step ", second);
  ASSERT_NE(from, std::string::npos);
  EXPECT_GT(std::stoll(logs.substr(from + 10)), 0) << logs;
  job.ExpectEveryEpisodeAppliedOncePerEpoch();
  // The job finished: its shared-memory snapshot slots are gone.
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(job.ShmPrefix())) << e.path();
  }
  // The meta-learned model and its table load; the table holds rows of the tasks' ids.
  auto model = meta::LoadMetaModel(job.dir() + "/out/model.pt");
  ASSERT_TRUE(model.ok()) << model.status().ToString();
  auto rows = ReadFile(job.dir() + "/out/model.pt.rows");
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  meta::EmbeddingShard<float>::Options o;
  o.dim = (*model)->embedding_dim();
  meta::EmbeddingShard<float> table(o);
  ASSERT_TRUE(table.Import(*rows).ok());
  EXPECT_GT(table.rows(), 100u);
}

// `baton run` checks the job before anything starts: an index that is not the episode file's
// (here a task renamed) is refused with exit 2, naming the file and line.
TEST(MetaJob, AnIndexOfAnotherFileIsRefusedBeforeAnyWorkerStarts) {
  MetaJobRun job;
  ASSERT_TRUE(job.prepared());
  const std::string index = job.dir() + "/rows.ep.index.csv";
  auto text = ReadFile(index);
  ASSERT_TRUE(text.ok());
  const size_t at = text->find("\n3,");
  ASSERT_NE(at, std::string::npos);
  text->insert(text->find('\n', at + 1), "x");  // line 5: task "task..x"
  std::ofstream(index) << *text;
  std::string out;
  EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &out), 2) << out;
  EXPECT_NE(out.find("rows.ep.index.csv:5: not an episode of"), std::string::npos) << out;
  EXPECT_TRUE(job.Workers().empty());
}

}  // namespace
}  // namespace baton::testing
