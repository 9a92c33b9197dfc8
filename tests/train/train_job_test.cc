// `kind: train` end to end: real `baton run`, master, agents and baton-train-worker processes on
// loopback, TorchScript fixtures exported by tests/train/fixtures/make_models.py.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "common/files.h"
#include "job_harness.h"
#include "ledger_check.h"
#include "train/model.h"
#include "train/snapshot.h"

namespace baton::testing {
namespace {

namespace fs = std::filesystem;

// Rows "id,x0,x1,x2,x3,y" with a learnable label: y = 1 when x0 + x1 > x2 (plus 5% noise).
std::string Rows(int n, uint64_t seed, int bad_every = 0) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::ostringstream out;
  out << "id,x0,x1,x2,x3,y\n";
  for (int i = 0; i < n; ++i) {
    float x[4];
    for (float& v : x) v = normal(rng);
    int y = x[0] + x[1] > x[2] ? 1 : 0;
    if (rng() % 20 == 0) y = 1 - y;
    out << "r" << i << ",";
    if (bad_every > 0 && i % bad_every == 3) {
      out << "not-a-number";
    } else {
      out << x[0];
    }
    out << "," << x[1] << "," << x[2] << "," << x[3] << "," << y << "\n";
  }
  return out.str();
}

struct TrainOptions {
  int nodes = 1;
  int workers = 1;
  int rows = 64;
  int records_per_shard = 8;
  int epochs = 1;
  int global_batch = 64;
  std::string model = "mlp_f64.pt";
  std::string optimizer = "{kind: sgd, lr: 1.0}";
  std::string extra = "";  // more top-level YAML
  std::string timeouts = "heartbeat_interval_ms: 200";
  std::string checkpoint = "";   // the train.checkpoint section's flow mapping, if any
  std::string extra_train = "";  // more lines of the train section
  int bad_every = 0;
};

class TrainJob {
 public:
  explicit TrainJob(const TrainOptions& o) {
    char tmpl[] = "/tmp/baton-train-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ + "/rows.csv") << Rows(o.rows, 11, o.bad_every);
    // A name of its own (the temp dir's suffix): tests running side by side (ctest -j) then
    // never see each other's shared-memory snapshots, which are named after the job.
    name_ = "train-test-" + dir_.substr(dir_.rfind('-') + 1);
    std::ofstream(spec()) << "name: " << name_ << "\nkind: train\nnodes: " << o.nodes << "\n"
                          << "input:\n  paths: [rows.csv]\n  format: csv\n  skip_header: true\n"
                          << "  records_per_shard: " << o.records_per_shard
                          << "\n  epochs: " << o.epochs << "\n"
                          << "worker: {per_node: " << o.workers << ", restart_backoff_ms: 100}\n"
                          << "master: {state_dir: state}\n"
                          << "timeouts: {" << o.timeouts << "}\n"
                          << o.extra << "train:\n"
                          << "  model: " << TRAIN_FIXTURES << "/" << o.model << "\n"
                          << "  save: trained.pt\n  key: id\n"
                          << "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n"
                          << "  global_batch: " << o.global_batch << "\n"
                          << "  optimizer: " << o.optimizer << "\n"
                          << (o.checkpoint.empty() ? "" : "  checkpoint: " + o.checkpoint + "\n")
                          << o.extra_train;
    rows_ = o.rows;
    epochs_ = o.epochs;
  }
  ~TrainJob() {
    KillProcessesMentioning(dir_);
    std::error_code ec;
    if (std::getenv("KEEP") == nullptr) fs::remove_all(dir_, ec);
  }
  std::string dir() const { return dir_; }
  // The names of this job's shared-memory snapshots start with it.
  std::string ShmPrefix() const { return "baton-" + name_ + "-"; }
  std::string spec() const { return dir_ + "/job.yaml"; }
  std::string saved() const { return dir_ + "/trained.pt"; }
  std::string state_dir() const { return dir_ + "/state"; }

  // `baton run` in the background, its output in run.log.
  void Start() {
    run_ = StartBatonRun(spec(), dir_ + "/run.log");
    ASSERT_GT(run_, 0);
  }
  // Waits for `baton run`; its exit code (-1 if it did not exit normally).
  int Wait() { return WaitForExit(run_); }
  std::string RunLog() const {
    std::ifstream in(dir_ + "/run.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  // The job's processes of one role ("master", "agent", or the train workers).
  std::vector<pid_t> Pids(const std::string& role) const {
    return ProcessesMatching([&](pid_t, const std::vector<std::string>& cmd) {
      const bool ours = std::any_of(cmd.begin(), cmd.end(), [&](const std::string& a) {
        return a.find(dir_) != std::string::npos;
      });
      if (!ours || cmd.size() < 2) return false;
      if (role == "worker") {
        return cmd[0].find("baton-train-worker") != std::string::npos &&
               std::find(cmd.begin(), cmd.end(), "--check") == cmd.end();
      }
      return cmd[0].find("baton-train-worker") == std::string::npos && cmd[1] == role;
    });
  }
  // SIGKILLs `baton run`, master, agent and workers at once, and deletes the job's shared-memory
  // snapshots, as a reboot would.
  void KillEverything() {
    std::vector<pid_t> all = Pids("run");
    for (const char* role : {"master", "agent", "worker"}) {
      for (pid_t p : Pids(role)) all.push_back(p);
    }
    for (pid_t p : all) ::kill(p, SIGKILL);
    EXPECT_EQ(Wait(), -1);
    for (const auto& e : fs::directory_iterator("/dev/shm")) {
      if (e.path().filename().string().starts_with(ShmPrefix())) fs::remove(e.path());
    }
  }
  // Waits until some rank logged `text` at least `times` times.
  bool WaitForLog(const std::string& text, int times = 1,
                  std::chrono::seconds timeout = std::chrono::seconds(60)) const {
    return WaitFor(
        [&] {
          const std::string logs = Logs();
          int n = 0;
          for (size_t at = logs.find(text); at != std::string::npos; at = logs.find(text, at + 1)) {
            ++n;
          }
          return n >= times;
        },
        timeout);
  }

  // Every record of rows.csv applied exactly once in every epoch (ledger_check.h).
  void ExpectEveryRecordAppliedOncePerEpoch() const {
    baton::testing::ExpectEveryRecordAppliedOncePerEpoch(state_dir() + "/checkpoints",
                                                         dir_ + "/rows.csv", rows_, epochs_);
  }
  // Every log line of the job's processes (master, agents, workers) under the state dir.
  std::string Logs() const {
    std::string all;
    std::error_code ec;  // the state dir appears only once the master runs
    for (const auto& e : fs::recursive_directory_iterator(dir_ + "/state", ec)) {
      if (e.path().extension() != ".log") continue;
      std::ifstream in(e.path());
      all += std::string(std::istreambuf_iterator<char>(in), {});
    }
    return all;
  }

 private:
  std::string dir_;
  std::string name_;
  pid_t run_ = -1;
  int rows_ = 0;
  int epochs_ = 1;
};

std::vector<double> Params(const std::string& path) {
  auto model = train::LoadTrainableModel(path);
  EXPECT_TRUE(model.ok()) << model.status().ToString();
  if (!model.ok()) return {};
  std::vector<double> out((*model)->size());
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = (*model)->dtype() == comm::DataType::kFloat64
                 ? static_cast<double*>((*model)->params())[i]
                 : static_cast<float*>((*model)->params())[i];
  }
  return out;
}

double MaxRelativeDiff(const std::vector<double>& a, const std::vector<double>& b) {
  double scale = 0, diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    scale = std::max(scale, std::abs(a[i]));
    diff = std::max(diff, std::abs(a[i] - b[i]));
  }
  return diff / scale;
}

TEST(TrainJob, StepsOfTwoAndFourRanksEqualOneProcessOnTheWholeBatch) {
  // One SGD step (lr 1) over all 64 rows: the update is the mean gradient of the batch however
  // the rows are split between ranks (fp64; only the order of the additions differs).
  std::vector<std::vector<double>> trained;
  for (int workers : {1, 2, 4}) {
    TrainOptions o;
    o.workers = workers;
    TrainJob job(o);
    std::string log;
    ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log, std::chrono::seconds(120)), 0)
        << log << job.Logs();
    trained.push_back(Params(job.saved()));
    ASSERT_FALSE(trained.back().empty());
  }
  const auto initial = Params(std::string(TRAIN_FIXTURES) + "/mlp_f64.pt");
  EXPECT_GT(MaxRelativeDiff(initial, trained[0]), 1e-3);  // the step changed the model
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[1]), 1e-12);
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[2]), 1e-12);
}

TEST(TrainJob, UnequalPartsAndMicroBatchesGiveTheGradientOfOneProcessOnTheWholeBatch) {
  // The split AntDT's controller makes (rank 0 three times as fast: 48 and 16 rows) and gradient
  // accumulation (passes of at most 5 rows): one SGD step still equals one process on all 64 rows.
  // So does the all-reduce by HO-Ring over 2 nodes x 2 ranks (forced at this small size).
  // And so do ZeRO-1 on one node and NIG (gradients reduced inside each node, then across) on
  // 2 nodes x 2 ranks: sharded gradients and updates give the same step.
  // And with clipping and momentum, the unequal split again: NNN and NGG (ZeRO-2) alike.
  std::vector<std::vector<double>> trained;
  for (int run : {0, 1, 2, 3, 4, 5, 6}) {
    TrainOptions o;
    if (run >= 5) {
      o.workers = 2;
      o.optimizer = "{kind: sgd, lr: 1.0, momentum: 0.9}";
      o.extra_train = std::string("  clip_grad_norm: 0.05\n  straggler: {speeds: [3, 1]}\n") +
                      (run == 6 ? "  sharding: NGG\n" : "");
    } else if (run == 3) {
      o.workers = 2;
      o.extra_train = "  sharding: zero1\n";
    } else if (run == 4) {
      o.nodes = 2;
      o.workers = 2;
      o.extra_train = "  sharding: NIG\n  allreduce: hierarchical\n";
    } else if (run == 1) {
      o.workers = 2;
      o.extra_train = "  straggler: {speeds: [3, 1], micro_batch: 5}\n";
    } else if (run == 2) {
      o.nodes = 2;
      o.workers = 2;
      o.extra_train = "  allreduce: hierarchical\n";
    }
    TrainJob job(o);
    std::string log;
    ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log, std::chrono::seconds(120)), 0)
        << log << job.Logs();
    const std::string logs = job.Logs();
    if (run == 1) {
      EXPECT_NE(logs.find("rank 0 of 2 on 1 node(s), from step 0, 48 rows a step in passes of at "
                          "most 5"),
                std::string::npos)
          << logs;
      EXPECT_NE(logs.find("rank 1 of 2 on 1 node(s), from step 0, 16 rows a step in passes of at "
                          "most 5"),
                std::string::npos)
          << logs;
    } else if (run == 2) {
      EXPECT_NE(logs.find("by HO-Ring over 2 nodes x 2 ranks"), std::string::npos) << logs;
    }
    if (run != 2) {
      EXPECT_EQ(logs.find("HO-Ring"), std::string::npos) << "one node: flat";
    }
    if (run == 3) {
      EXPECT_NE(logs.find("sharding NNG over 1 node(s) x 2 rank(s)"), std::string::npos) << logs;
    } else if (run == 4) {
      EXPECT_NE(logs.find("sharding NIG over 2 node(s) x 2 rank(s)"), std::string::npos) << logs;
    }
    trained.push_back(Params(job.saved()));
    ASSERT_FALSE(trained.back().empty());
  }
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[1]), 1e-12);
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[2]), 1e-12);
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[3]), 1e-12);
  EXPECT_LE(MaxRelativeDiff(trained[0], trained[4]), 1e-12);
  EXPECT_GT(MaxRelativeDiff(trained[0], trained[5]), 1e-3);  // clipping changed the step
  EXPECT_LE(MaxRelativeDiff(trained[5], trained[6]), 1e-12);
}

// Mean per-sample loss of the model at `path` on `rows` fresh rows.
double MeanLoss(const std::string& path, int rows) {
  auto model = train::LoadTrainableModel(path);
  EXPECT_TRUE(model.ok());
  infer::HostTensor x = infer::ZerosTensor(infer::TensorType::kFloat32, {rows, 4});
  x.f.clear();
  infer::HostTensor y = infer::ZerosTensor(infer::TensorType::kFloat32, {rows, 1});
  y.f.clear();
  std::istringstream in(Rows(rows, 99));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream fields(line);
    std::string id;
    float v[5];
    fields >> id >> v[0] >> v[1] >> v[2] >> v[3] >> v[4];
    x.f.insert(x.f.end(), v, v + 4);
    y.f.push_back(v[4]);
  }
  return *(*model)->ForwardBackward({x, y}) / rows;
}

// The step a generation started from ("generation G: rank R of ..., from step S"), or -1.
int64_t FromStep(const std::string& logs, int64_t generation) {
  const size_t at = logs.find("generation " + std::to_string(generation) + ": rank");
  if (at == std::string::npos) return -1;
  const size_t from = logs.find("from step ", at);
  return from == std::string::npos ? -1 : std::stoll(logs.substr(from + 10));
}

TrainOptions LongJob() {
  TrainOptions o;
  o.workers = 2;
  o.rows = 20000;
  o.records_per_shard = 500;
  o.epochs = 4;
  o.global_batch = 16;
  o.optimizer = "{kind: adam, lr: 0.01}";
  o.extra = "failure: {max_shard_retries: 20}\n";
  return o;
}

TEST(TrainJob, AWorkerKilledMidTrainingIsReplacedAndTrainingGoesOnFromWhereItWas) {
  TrainJob job(LongJob());
  job.Start();
  // Wait until training is under way (~700 steps a second here), then SIGKILL one rank.
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Each rank's step, loss and step-time split are in the job's status while it trains.
  std::string status;
  ASSERT_EQ(RunCommand({BATON_BIN, "status", "--state-dir", job.state_dir()}, &status), 0)
      << status;
  for (const char* gauge : {"train.step=", "train.epoch=", "train.loss=", "train.compute_ms=",
                            "train.comm_ms=", "train.batch=8", "train.world=2"}) {
    EXPECT_NE(status.find(gauge), std::string::npos) << gauge << " missing in\n" << status;
  }
  auto workers = job.Pids("worker");
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  // The survivor and the restarted rank met in a later generation, which restored a snapshot of
  // the trained state (not step 0) from memory.
  EXPECT_GT(FromStep(logs, 2), 0) << logs;
  EXPECT_NE(logs.find("'s memory in"), std::string::npos) << logs;
  job.ExpectEveryRecordAppliedOncePerEpoch();
  // The job finished: its shared-memory slots are gone.
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(job.ShmPrefix())) << e.path();
  }
  // And it learned: the loss on fresh rows fell well below the untrained model's.
  const double before = MeanLoss(std::string(TRAIN_FIXTURES) + "/mlp_f64.pt", 2000);
  const double after = MeanLoss(job.saved(), 2000);
  EXPECT_LT(after, 0.6 * before) << "before " << before << " after " << after;
}

// Sharded optimizer state (NIG with Adam: each rank holds a quarter of the moments) through a
// worker SIGKILLed and a scale-up: snapshots hold the whole state, every generation re-shards it
// for its own size, nothing is lost or applied twice, and the model still learns.
TEST(TrainJob, ShardedStateSurvivesAKilledWorkerAndAScaleUpWithNothingLost) {
  TrainOptions o = LongJob();
  o.extra_train = "  sharding: NIG\n";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  auto workers = job.Pids("worker");
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  ASSERT_TRUE(job.WaitForLog("generation 2: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  std::string out;
  ASSERT_EQ(
      RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", "3"}, &out), 0)
      << out;
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  EXPECT_NE(logs.find("sharding NIG over 1 node(s) x 2 rank(s)"), std::string::npos) << logs;
  EXPECT_NE(logs.find("sharding NIG over 1 node(s) x 3 rank(s)"), std::string::npos) << logs;
  EXPECT_GT(FromStep(logs, 2), 0) << logs;  // the restart resumed a snapshot, not step 0
  job.ExpectEveryRecordAppliedOncePerEpoch();
  const double before = MeanLoss(std::string(TRAIN_FIXTURES) + "/mlp_f64.pt", 2000);
  const double after = MeanLoss(job.saved(), 2000);
  EXPECT_LT(after, 0.6 * before) << "before " << before << " after " << after;
}

TEST(TrainJob, AKilledMasterAndScalingUpAndDownMidEpochLoseNoRecordAndRepeatNone) {
  TrainJob job(LongJob());
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto masters = job.Pids("master");
  ASSERT_EQ(masters.size(), 1u) << job.RunLog();
  ASSERT_EQ(::kill(masters[0], SIGKILL), 0);
  // `baton run` restarts the master; the workers go on meanwhile. Then grow to 3, shrink to 1.
  std::string out;
  ASSERT_TRUE(WaitFor(
      [&] {
        return RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", "3"},
                          &out) == 0;
      },
      std::chrono::seconds(30)))
      << out << job.RunLog();
  ASSERT_TRUE(job.WaitForLog(" of 3 on 1 node(s)")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_EQ(
      RunCommand({BATON_BIN, "scale", "--state-dir", job.state_dir(), "--workers", "1"}, &out), 0)
      << out;
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  EXPECT_NE(logs.find(" of 1 on 1 node(s)"), std::string::npos) << logs;
  EXPECT_NE(job.RunLog().find("restart"), std::string::npos) << job.RunLog();
  job.ExpectEveryRecordAppliedOncePerEpoch();
}

TEST(TrainJob, AKilledAgentTakesItsNodesRanksAndTheJobResumesWithNothingLost) {
  TrainOptions o = LongJob();
  o.nodes = 2;
  o.workers = 1;
  o.timeouts = "heartbeat_interval_ms: 200, node_dead_ms: 1500";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  pid_t agent = 0;
  for (pid_t p : job.Pids("agent")) {
    std::ifstream in("/proc/" + std::to_string(p) + "/cmdline");
    const std::string cmd(std::istreambuf_iterator<char>(in), {});
    if (cmd.find("node-1") != std::string::npos) agent = p;
  }
  ASSERT_GT(agent, 0) << job.RunLog();
  ASSERT_EQ(::kill(agent, SIGKILL), 0);  // its worker dies with it (parent-death signal)
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  EXPECT_GT(FromStep(logs, 2), 0) << logs;
  job.ExpectEveryRecordAppliedOncePerEpoch();
}

TEST(TrainJob, ARankPausedPastItsLeasesRollsTheJobBackInsteadOfApplyingRowsTwice) {
  TrainOptions o = LongJob();
  o.timeouts = "heartbeat_interval_ms: 200, lease_ms: 1000";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  auto workers = job.Pids("worker");
  ASSERT_EQ(workers.size(), 2u);
  // Its leases expire while it is stopped; its peer waits in the step's all-reduce (the
  // collective timeout is 60 s), so the generation goes on when it resumes.
  ASSERT_EQ(::kill(workers[1], SIGSTOP), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_EQ(::kill(workers[1], SIGCONT), 0);
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  EXPECT_NE(logs.find("lease of shard"), std::string::npos) << logs;
  EXPECT_NE(logs.find("a lease was lost; rolling back"), std::string::npos) << logs;
  job.ExpectEveryRecordAppliedOncePerEpoch();
}

TEST(TrainJob, AJobKilledWholeResumesFromItsLastPersistedCheckpoint) {
  TrainOptions o = LongJob();
  o.checkpoint = "{every_steps: 20}";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  job.KillEverything();
  job.Start();
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  // The rerun restored a snapshot of step > 0 from the disk (the first run started from the
  // model file and, until the kill, restored nothing).
  const std::string logs = job.Logs();
  const size_t restored = logs.find("'s disk in");
  ASSERT_NE(restored, std::string::npos) << logs;
  const size_t step = logs.rfind("restored step ", restored);
  ASSERT_NE(step, std::string::npos);
  EXPECT_GT(std::stoll(logs.substr(step + 14)), 0) << logs;
  job.ExpectEveryRecordAppliedOncePerEpoch();
}

TEST(TrainJob, TheHeldOutSplitIsScoredWhileTrainingAndItsLossFalls) {
  TrainOptions o;
  o.workers = 2;
  o.rows = 4000;
  o.records_per_shard = 500;
  o.epochs = 3;
  o.global_batch = 32;
  o.optimizer = "{kind: adam, lr: 0.01}";
  o.extra_train = "  eval: {path: holdout.csv, every_steps: 100, score_method: score, label: y}\n";
  TrainJob job(o);
  std::ofstream(job.dir() + "/holdout.csv") << Rows(1000, 99);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log << job.Logs();
  const std::string logs = job.Logs();
  // "eval at step S: loss L over 1000 rows, auc A": every 100 steps, and once more for the saved
  // model. The first (step 100) against the saved model's.
  std::vector<std::pair<double, double>> evals;
  for (size_t at = logs.find("eval at step "); at != std::string::npos;
       at = logs.find("eval at step ", at + 1)) {
    const size_t loss = logs.find(": loss ", at), auc = logs.find(", auc ", at);
    ASSERT_NE(auc, std::string::npos) << logs.substr(at, 120);
    EXPECT_NE(logs.substr(at, 120).find("over 1000 rows"), std::string::npos)
        << logs.substr(at, 120);
    evals.emplace_back(std::stod(logs.substr(loss + 7)), std::stod(logs.substr(auc + 6)));
  }
  ASSERT_GE(evals.size(), 3u) << logs;
  EXPECT_NE(logs.find("(the saved model)"), std::string::npos) << logs;
  EXPECT_LT(evals.back().first, evals.front().first);
  EXPECT_GT(evals.back().second, 0.9) << "the label is x0 + x1 > x2 with 5% noise";
  // And in the status (`baton run` prints the final one): the rank 0 gauges.
  EXPECT_NE(log.find("train.eval_auc="), std::string::npos) << log;

  // A held-out split that does not parse, or a score method that does not exist, is refused
  // before anything starts, naming the problem.
  TrainOptions bad = o;
  bad.extra_train = "  eval: {path: holdout.csv, score_method: nope, label: y}\n";
  TrainJob nothing(bad);
  std::ofstream(nothing.dir() + "/holdout.csv") << Rows(10, 5);
  EXPECT_EQ(RunCommand({BATON_BIN, "run", nothing.spec()}, &log), 2) << log;
  EXPECT_NE(log.find("train.eval: the model has no nope() method"), std::string::npos) << log;
}

// The saved model's held-out loss ("eval at step S (the saved model): loss L").
double SavedModelEvalLoss(const std::string& logs) {
  const size_t at = logs.find("(the saved model): loss ");
  return at == std::string::npos ? -1 : std::stod(logs.substr(at + 24));
}

TEST(TrainJob, StragglersAreDetectedTheSplitFollowsThemAndNoRecordIsLostOrRepeated) {
  // Two ranks, compute emulated at 200 us a row (16 rows each: 3.2 ms a step) so that the split
  // matters; rank 1 slowed down for real (it sleeps 3x its own compute). Three runs: the equal
  // split with no straggler, ND (adjust_batch) with a straggler for the first 3 s, DD (profile,
  // micro-batches of 8) with one throughout.
  TrainOptions o;
  o.workers = 2;
  o.rows = 16000;
  o.records_per_shard = 250;
  o.epochs = 3;
  o.global_batch = 32;
  // At lr 0.005 the final iterate wandered ~1.2 % between data orders (DD's held-out loss 1.15 %
  // and 1.17 % off in two CI runs, against the 1 % goal); at 0.002 the runs agree within 0.3 %.
  o.optimizer = "{kind: adam, lr: 0.002}";
  const std::string eval = "  eval: {path: holdout.csv, every_steps: 100000}\n";
  const std::string emulate = "emulate_us_per_sample: 200";
  std::vector<double> losses;
  for (const std::string& straggler :
       {"{" + emulate + "}",
        "{rules: [adjust_batch], inject: [{rank: 1, slowdown: 4, on_s: 3}], " + emulate + "}",
        "{rules: [profile], micro_batch: 8, inject: [{rank: 1, slowdown: 4}], " + emulate + "}"}) {
    o.extra_train = eval + "  straggler: " + straggler + "\n";
    TrainJob job(o);
    std::ofstream(job.dir() + "/holdout.csv") << Rows(2000, 99);
    std::string log;
    ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log, std::chrono::seconds(240)), 0)
        << log << job.Logs();
    const std::string logs = job.Logs();
    job.ExpectEveryRecordAppliedOncePerEpoch();
    losses.push_back(SavedModelEvalLoss(logs));
    ASSERT_GT(losses.back(), 0) << logs;
    if (straggler.find("adjust_batch") != std::string::npos) {
      // Detected (the master's log), the split moved to the fast rank at one step on both ranks,
      // and back to the equal split once the straggler was gone.
      EXPECT_NE(logs.find("straggler: rank 1 ("), std::string::npos) << logs;
      EXPECT_NE(logs.find("is a transient straggler"), std::string::npos) << logs;
      EXPECT_NE(logs.find("batch plan v1 from the master"), std::string::npos) << logs;
      EXPECT_NE(logs.find("(no straggler"), std::string::npos) << logs;
      EXPECT_NE(logs.find("cleared"), std::string::npos) << logs;
    } else if (straggler.find("profile") != std::string::npos) {
      EXPECT_NE(logs.find("batch plan v1 for generation"), std::string::npos) << logs;
      EXPECT_NE(logs.find("micro-batches [8 0]"), std::string::npos) << logs;
      EXPECT_NE(logs.find("is a deterministic straggler"), std::string::npos) << logs;
    } else {
      EXPECT_EQ(logs.find("batch plan"), std::string::npos) << logs;
    }
  }
  // The same number of samples reaches the same held-out loss (within 1 %) whatever the split.
  EXPECT_NEAR(losses[1] / losses[0], 1, 0.01) << losses[0] << " " << losses[1];
  EXPECT_NEAR(losses[2] / losses[0], 1, 0.01) << losses[0] << " " << losses[2];
}

TEST(TrainJob, KillRestartMovesASlowHostsWorkerToASpareNodeAndNoRecordIsLostOrRepeated) {
  // Two nodes of one worker and a spare; every worker on node-1 is 4x slower (a slow host:
  // whichever rank it holds), compute emulated at 200 us a row. kill_restart moves node-1's
  // worker to the spare once the straggler lasted 1 s and the saving beats twice the assumed
  // restart cost. The master is then SIGKILLed: its next life keeps node-1 empty and the worker
  // on node-2 (counts and anti-affinity come back from the state store and the job's KV).
  TrainOptions o;
  o.nodes = 2;
  o.workers = 1;
  o.rows = 16000;
  o.records_per_shard = 250;
  o.epochs = 2;
  o.global_batch = 32;
  o.extra = "spare_nodes: 1\n";
  o.optimizer = "{kind: adam, lr: 0.005}";
  o.extra_train =
      "  straggler: {rules: [kill_restart], persistent_after_s: 1, restart_cost_s: 0.5, "
      "inject: [{node: node-1, slowdown: 4}], emulate_us_per_sample: 200}\n";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("the move to a spare node took")) << job.Logs();
  auto masters = job.Pids("master");
  ASSERT_EQ(masters.size(), 1u) << job.RunLog();
  ASSERT_EQ(::kill(masters[0], SIGKILL), 0);
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  const std::string logs = job.Logs();
  job.ExpectEveryRecordAppliedOncePerEpoch();
  EXPECT_NE(job.RunLog().find("restart"), std::string::npos) << job.RunLog();
  EXPECT_NE(logs.find("0 worker(s) (spare)"), std::string::npos) << logs;
  EXPECT_NE(logs.find("1 worker(s) move from node node-1 to spare node node-2"), std::string::npos)
      << logs;
  EXPECT_NE(logs.find("[node-2] action: 1 worker(s)"), std::string::npos) << logs;
  EXPECT_NE(logs.find("[node-1] action: 0 worker(s)"), std::string::npos) << logs;
  // The stopped worker announced it: every rank snapshotted after that step, so the generation
  // that follows restores it and repeats no step.
  const size_t left = logs.find("[train node-1/0] stop requested; leaving at step ");
  ASSERT_NE(left, std::string::npos) << logs;
  const std::string step = logs.substr(left + 49, logs.find(' ', left + 49) - (left + 49));
  EXPECT_NE(logs.find("step " + step + ": 1 rank(s) leaving; snapshot taken"), std::string::npos)
      << step << logs;
  EXPECT_NE(logs.find("restored step " + step + " "), std::string::npos) << step << logs;
  // One move in the job, none back: node-1, registered again with the new master, is never
  // asked to run a worker again.
  EXPECT_NE(logs.find("[node-1] registered again"), std::string::npos) << logs;
  EXPECT_NE(logs.find("[node-2] registered again"), std::string::npos) << logs;
  const size_t first = logs.find("worker(s) move from node");
  EXPECT_EQ(logs.find("worker(s) move from node", first + 1), std::string::npos) << logs;
  EXPECT_EQ(logs.find("[node-1] the master now asks for 1"), std::string::npos) << logs;
  EXPECT_EQ(logs.find("[node-2] the master now asks for 0"), std::string::npos) << logs;
  EXPECT_TRUE(fs::exists(job.saved()));
  // The emptied node's worker removed its node's memory snapshot when it left (the others hold
  // the drain's snapshot); the rest were removed at the end.
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    EXPECT_FALSE(e.path().filename().string().starts_with(job.ShmPrefix())) << e.path();
  }
}

// The parent pid of `pid` (/proc/PID/stat), or -1.
pid_t ParentOf(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));
  char state = 0;
  pid_t parent = -1;
  rest >> state >> parent;
  return parent;
}

TEST(TrainJob, ANodeLostWithItsWorkerIsDeclaredDeadAndASpareTakesItsWorkers) {
  // node-1 is lost: its agent SIGSTOPped (silent, as a host that froze or left the network), its
  // worker SIGKILLed (the survivor's all-reduce fails at once). After timeouts.node_dead_ms the
  // master declares node-1 dead, revokes its leases and gives its worker count to the spare,
  // whose worker joins node-0's; training goes on. The frozen agent is then SIGKILLed; `baton
  // run` restarts it, and back, node-1 is told to run no worker.
  TrainOptions o = LongJob();
  o.nodes = 2;
  o.workers = 1;
  o.extra += "spare_nodes: 1\n";
  o.timeouts = "heartbeat_interval_ms: 200, node_dead_ms: 1500";
  TrainJob job(o);
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank 1 of 2")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  pid_t agent = -1, worker = -1;
  for (pid_t a : job.Pids("agent")) {
    std::ifstream cmd("/proc/" + std::to_string(a) + "/cmdline");
    const std::string line((std::istreambuf_iterator<char>(cmd)), {});
    if (line.find(std::string("node-1") + '\0') != std::string::npos) agent = a;
  }
  for (pid_t w : job.Pids("worker")) {
    if (agent > 0 && ParentOf(w) == agent) worker = w;
  }
  ASSERT_GT(agent, 0) << job.RunLog();
  ASSERT_GT(worker, 0) << job.RunLog();
  ASSERT_EQ(::kill(agent, SIGSTOP), 0);
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  ASSERT_TRUE(job.WaitForLog("node node-1 died: its workers move to spare node node-2"))
      << job.Logs();
  ASSERT_TRUE(job.WaitForLog("[node-2] action: 1 worker(s) (node node-1 died)")) << job.Logs();
  ASSERT_TRUE(job.WaitForLog("[train node-2/0] generation")) << job.Logs();
  ::kill(agent, SIGKILL);
  ASSERT_TRUE(job.WaitForLog("[node-1] registered with", 2)) << job.RunLog() << job.Logs();
  ASSERT_EQ(job.Wait(), 0) << job.RunLog() << job.Logs();
  job.ExpectEveryRecordAppliedOncePerEpoch();
  const std::string logs = job.Logs();
  const size_t back = logs.rfind("[node-1] registered with");
  const std::string line = logs.substr(back, logs.find('\n', back) - back);
  EXPECT_NE(line.find(", 0 worker(s)"), std::string::npos) << line << "\n" << logs;
  // Known leak: the lost node's memory snapshot stays in its /dev/shm (no worker of the job runs
  // there again to remove it; a real lost host drops it when it reboots). Here the host is ours.
  for (const auto& e : fs::directory_iterator("/dev/shm")) {
    if (e.path().filename().string().starts_with(job.ShmPrefix() + "node-1-")) fs::remove(e.path());
  }
}

// `baton train plan`: the job's model timed on its rows, every strategy's memory and predicted
// step on the cluster described, the pick among those kind: train runs; a budget nothing fits
// and a bad link speed are refused with exit 2.
TEST(TrainJob, ThePlanPrintsEveryStrategyAndPicksOneKindTrainRuns) {
  TrainJob job(TrainOptions{});
  std::string out;
  ASSERT_EQ(RunCommand({BATON_BIN, "train", "plan", job.spec(), "--nodes", "2", "--per-node", "4",
                        "--inter-gbps", "1"},
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("2 node(s) x 4 rank(s)"), std::string::npos) << out;
  for (const char* s : {"NNN", "NNG", "NGG", "GGG", "NIG", "NII", "IIG", "IGG", "ING", "III"}) {
    EXPECT_NE(out.find(std::string("\n") + s + " "), std::string::npos) << s << "\n" << out;
  }
  EXPECT_NE(out.find("GGG      ZeRO-3"), std::string::npos) << out;
  EXPECT_NE(out.find("no (shards parameters)"), std::string::npos) << out;
  const size_t pick = out.find("pick: train.sharding: ");
  ASSERT_NE(pick, std::string::npos) << out;
  const std::string picked = out.substr(pick + 22, 3);
  EXPECT_TRUE(picked == "NNN" || picked == "NNG" || picked == "NGG" || picked == "NIG" ||
              picked == "NII")
      << out;
  EXPECT_EQ(RunCommand({BATON_BIN, "train", "plan", job.spec(), "--memory-gb", "0.000001"}, &out),
            2)
      << out;
  EXPECT_NE(out.find("no strategy kind: train can run fits"), std::string::npos) << out;
  EXPECT_EQ(RunCommand({BATON_BIN, "train", "plan", job.spec(), "--inter-gbps", "0"}, &out), 2)
      << out;
  EXPECT_NE(out.find("--inter-gbps"), std::string::npos) << out;
}

TEST(TrainJob, AModelThatBreaksTheContractIsRefusedBeforeAnyWorkerStarts) {
  TrainOptions o;
  o.model = "mean_loss.pt";
  TrainJob job(o);
  std::string log;
  EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 2) << log;
  EXPECT_NE(log.find("train.model: forward() must return the per-sample losses"), std::string::npos)
      << log;
  EXPECT_FALSE(fs::exists(job.dir() + "/state/state.db")) << "nothing may start";

  TrainOptions missing;
  missing.model = "no-such-model.pt";
  TrainJob nothing(missing);
  EXPECT_EQ(RunCommand({BATON_BIN, "run", nothing.spec()}, &log), 2) << log;
  EXPECT_NE(log.find("no-such-model.pt does not exist"), std::string::npos) << log;
}

TEST(TrainJob, BadRowsGoToTheErrorsFileAndTheRestIsTrainedOn) {
  TrainOptions o;
  o.rows = 200;
  o.records_per_shard = 50;
  o.global_batch = 20;
  o.bad_every = 25;  // 8 bad rows, 2 per shard: 4% of each shard
  o.extra = "output: {dir: out}\n";
  o.optimizer = "{kind: sgd, lr: 0.1}";
  TrainJob job(o);
  std::string log;
  // train.max_error_rate defaults to 1%: every shard fails...
  EXPECT_NE(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  EXPECT_NE(log.find("train.max_error_rate"), std::string::npos) << log;
  // ...and with 5% allowed the job trains on the rest and lists the bad rows.
  std::ofstream(job.spec(), std::ios::app) << "  max_error_rate: 0.05\n";
  fs::remove_all(job.dir() + "/state");
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  EXPECT_TRUE(fs::exists(job.saved()));
  int bad = 0;
  for (const auto& e : fs::directory_iterator(job.dir() + "/out/_errors")) {
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      ++bad;
      EXPECT_NE(line.find("not-a-number"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(bad, 8);
}

TEST(TrainJob, AJobWhoseCheckpointsVanishedStopsInsteadOfTrainingOnFromScratch) {
  TrainJob job(LongJob());
  job.Start();
  ASSERT_TRUE(job.WaitForLog("generation 1: rank")) << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  job.KillEverything();
  // As when rank 0 lands on a node that does not share the checkpoint directory.
  fs::remove_all(job.state_dir() + "/checkpoints");
  job.Start();
  EXPECT_NE(job.Wait(), 0) << job.RunLog();
  const std::string logs = job.Logs();
  EXPECT_NE(logs.find("holds no snapshot as new as the one this job persisted"), std::string::npos)
      << logs;
  EXPECT_EQ(logs.find("new job (lineage", logs.find("holds no snapshot")), std::string::npos)
      << "it must not start over from the model file: " << logs;
}

}  // namespace
}  // namespace baton::testing
