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

#include "agent/spawn.h"
#include "job_harness.h"
#include "train/model.h"

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
  int workers = 1;
  int rows = 64;
  int records_per_shard = 8;
  int epochs = 1;
  int global_batch = 64;
  std::string model = "mlp_f64.pt";
  std::string optimizer = "{kind: sgd, lr: 1.0}";
  std::string extra = "";  // more top-level YAML
  int bad_every = 0;
};

class TrainJob {
 public:
  explicit TrainJob(const TrainOptions& o) {
    char tmpl[] = "/tmp/baton-train-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ + "/rows.csv") << Rows(o.rows, 11, o.bad_every);
    std::ofstream(spec()) << "name: train-test\nkind: train\n"
                          << "input:\n  paths: [rows.csv]\n  format: csv\n  skip_header: true\n"
                          << "  records_per_shard: " << o.records_per_shard
                          << "\n  epochs: " << o.epochs << "\n"
                          << "worker: {per_node: " << o.workers << ", restart_backoff_ms: 100}\n"
                          << "master: {state_dir: state}\n"
                          << "timeouts: {heartbeat_interval_ms: 200}\n"
                          << o.extra << "train:\n"
                          << "  model: " << TRAIN_FIXTURES << "/" << o.model << "\n"
                          << "  save: trained.pt\n  key: id\n"
                          << "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n"
                          << "  global_batch: " << o.global_batch << "\n"
                          << "  optimizer: " << o.optimizer << "\n";
  }
  ~TrainJob() {
    for (pid_t p : ProcessesMatching([&](pid_t, const std::vector<std::string>& cmd) {
           return std::any_of(cmd.begin(), cmd.end(), [&](const std::string& a) {
             return a.find(dir_) != std::string::npos;
           });
         })) {
      ::kill(p, SIGKILL);
    }
    std::error_code ec;
    if (std::getenv("KEEP") == nullptr) fs::remove_all(dir_, ec);
  }
  std::string dir() const { return dir_; }
  std::string spec() const { return dir_ + "/job.yaml"; }
  std::string saved() const { return dir_ + "/trained.pt"; }
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

TEST(TrainJob, AWorkerKilledMidTrainingIsReplacedAndTrainingGoesOnFromWhereItWas) {
  TrainOptions o;
  o.workers = 2;
  o.rows = 20000;
  o.records_per_shard = 500;
  o.epochs = 4;
  o.global_batch = 16;
  o.optimizer = "{kind: adam, lr: 0.01}";
  TrainJob job(o);
  agent::SpawnRequest req;
  req.argv = {BATON_BIN, "run", job.spec()};
  req.output_path = job.dir() + "/run.log";
  auto run = agent::SpawnProcess(req);
  ASSERT_TRUE(run.ok());
  // Wait until training is under way (~700 steps a second here), then SIGKILL one rank.
  ASSERT_TRUE(WaitFor([&] { return job.Logs().find("generation 1: rank") != std::string::npos; },
                      std::chrono::seconds(60)))
      << job.Logs();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  // Each rank's step, loss and step-time split are in the job's status while it trains.
  std::string status;
  ASSERT_EQ(RunCommand({BATON_BIN, "status", "--state-dir", job.dir() + "/state"}, &status), 0)
      << status;
  for (const char* gauge : {"train.step=", "train.epoch=", "train.loss=", "train.compute_ms=",
                            "train.comm_ms=", "train.batch=8", "train.world=2"}) {
    EXPECT_NE(status.find(gauge), std::string::npos) << gauge << " missing in\n" << status;
  }
  auto workers = ProcessesMatching([&](pid_t, const std::vector<std::string>& cmd) {
    return cmd[0].find("baton-train-worker") != std::string::npos &&
           std::find(cmd.begin(), cmd.end(), job.spec()) != cmd.end() &&
           std::find(cmd.begin(), cmd.end(), "--check") == cmd.end();
  });
  ASSERT_EQ(workers.size(), 2u);
  ASSERT_EQ(::kill(workers[1], SIGKILL), 0);
  int st = 0;
  ASSERT_EQ(::waitpid(*run, &st, 0), *run);
  std::ifstream run_log(job.dir() + "/run.log");
  const std::string run_text(std::istreambuf_iterator<char>(run_log), {});
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << run_text << job.Logs();
  const std::string logs = job.Logs();
  // The survivor and the restarted rank met in a later generation, which took the trained state
  // (not step 0).
  EXPECT_NE(logs.find("generation 2: rank"), std::string::npos) << logs;
  const size_t from = logs.find("from step ", logs.find("generation 2: rank"));
  ASSERT_NE(from, std::string::npos);
  EXPECT_GT(std::stoll(logs.substr(from + 10)), 0) << logs;
  // And it learned: the loss on fresh rows fell well below the untrained model's.
  const double before = MeanLoss(std::string(TRAIN_FIXTURES) + "/mlp_f64.pt", 2000);
  const double after = MeanLoss(job.saved(), 2000);
  EXPECT_LT(after, 0.6 * before) << "before " << before << " after " << after;
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

}  // namespace
}  // namespace baton::testing
