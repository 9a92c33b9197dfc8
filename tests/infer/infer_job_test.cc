// End-to-end tests of `kind: infer` jobs: the real `baton run`, master, agents and
// baton-infer-worker processes on loopback, real TorchScript models (exported at build time),
// real SIGKILLs. Each test checks the output files themselves.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/clock.h"

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string kFixtures = INFER_FIXTURES;

std::string ReadWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteWhole(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& log, const std::string& cwd) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) ::_exit(126);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Exit code, or -1 after killing it on timeout.
int WaitFor(pid_t pid, std::chrono::seconds timeout) {
  const int64_t deadline = baton::MonoMillis() + timeout.count() * 1000;
  int st = 0;
  while (baton::MonoMillis() < deadline) {
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(20ms);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &st, 0);
  return -1;
}

int RunCommand(const std::vector<std::string>& argv, std::string* output,
               const std::string& cwd = "", std::chrono::seconds timeout = 240s) {
  const std::string log =
      fs::temp_directory_path() / ("baton-infer-cmd-" + std::to_string(::getpid()) + ".log");
  fs::remove(log);
  int code = WaitFor(Spawn(argv, log, cwd), timeout);
  if (output) *output = ReadWhole(log);
  fs::remove(log);
  return code;
}

// pids of baton-infer-worker processes started for the spec at `spec`.
std::vector<pid_t> InferWorkers(const std::string& spec) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (!std::all_of(name.begin(), name.end(), ::isdigit)) continue;
    std::string cmd = ReadWhole(e.path() / "cmdline");
    std::replace(cmd.begin(), cmd.end(), '\0', ' ');
    if (cmd.find("baton-infer-worker") != std::string::npos &&
        cmd.find(spec) != std::string::npos && cmd.find("--check") == std::string::npos) {
      out.push_back(std::stoi(name));
    }
  }
  return out;
}

// Deterministic rows for the tiny fixture: id, d0..d3 (floats), c0, c1 (ids in [0,100)).
std::string TinyRows(int n, uint64_t seed = 1) {
  std::string out = "id,d0,d1,d2,d3,c0,c1\n";
  uint64_t x = seed;
  auto next = [&] {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    return x >> 33;
  };
  char buf[160];
  for (int i = 0; i < n; ++i) {
    double d[4];
    for (double& v : d) v = static_cast<double>(next() % 20000) / 1000.0 - 10.0;
    std::snprintf(buf, sizeof buf, "r%d,%.3f,%.3f,%.3f,%.3f,%llu,%llu\n", i, d[0], d[1], d[2], d[3],
                  static_cast<unsigned long long>(next() % 100),
                  static_cast<unsigned long long>(next() % 100));
    out += buf;
  }
  return out;
}

struct JobOptions {
  std::string model = "tiny.pt";
  int records_per_shard = 1000;
  int batch_size = 100;
  int nodes = 1;
  int per_node = 2;
  std::string mode = "pipelined";
  std::string suffix = ".csv";
  std::string extra_infer;  // appended to the infer section (two-space indented lines)
  std::string extra_top;    // appended at the top level
};

// A job directory with rows.csv (written by the caller) and job.yaml.
class InferJob {
 public:
  explicit InferJob(const std::string& name) {
    dir_ = fs::temp_directory_path() / ("baton-infer-" + name + "-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~InferJob() {
    for (pid_t p : InferWorkers(spec())) ::kill(p, SIGKILL);
    if (::getenv("BATON_KEEP_TEST_DIRS") == nullptr) fs::remove_all(dir_);
  }
  std::string dir() const { return dir_; }
  std::string spec() const { return dir_ + "/job.yaml"; }
  std::string out() const { return dir_ + "/out"; }
  std::string state() const { return dir_ + "/state"; }

  void WriteSpec(const JobOptions& o) {
    std::string yaml =
        "name: t\nkind: infer\nnodes: " + std::to_string(o.nodes) +
        "\ninput:\n  paths: [rows.csv]\n  format: csv\n  skip_header: true\n"
        "  records_per_shard: " +
        std::to_string(o.records_per_shard) + "\noutput:\n  dir: out\n  suffix: " + o.suffix +
        "\nworker:\n  per_node: " + std::to_string(o.per_node) +
        "\n  restart_backoff_ms: 100\nmaster:\n  state_dir: state\n" + o.extra_top +
        "infer:\n  key: id\n  tensors:\n"
        "    - {name: dense, type: float32, columns: [d0..d3]}\n"
        "    - {name: sparse, type: int64, columns: [c0, c1]}\n"
        "  models:\n    - {name: m, path: " +
        kFixtures + "/" + o.model + ", batch_size: " + std::to_string(o.batch_size) +
        "}\n  pipeline: {mode: " + o.mode + ", autoscale_period_ms: 300}\n" + o.extra_infer;
    WriteWhole(spec(), yaml);
  }

  // Every committed part file, by name.
  std::map<std::string, std::string> Parts() const {
    std::map<std::string, std::string> parts;
    if (!fs::exists(out())) return parts;
    for (const auto& e : fs::directory_iterator(out())) {
      const std::string name = e.path().filename();
      if (name.starts_with("part-")) parts[name] = ReadWhole(e.path());
    }
    return parts;
  }
  size_t PartCount() const {
    size_t n = 0;
    if (!fs::exists(out())) return n;
    for (const auto& e : fs::directory_iterator(out())) {
      n += e.path().filename().string().starts_with("part-");
    }
    return n;
  }
  std::string Errors() const {
    std::string all;
    if (!fs::exists(out() + "/_errors")) return all;
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(out() + "/_errors")) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) all += ReadWhole(f);
    return all;
  }
  std::string NodeLogs() const {
    std::string all;
    for (const auto& e : fs::directory_iterator(state())) {
      if (e.path().filename().string().starts_with("node-")) all += ReadWhole(e.path());
    }
    return all;
  }

 private:
  std::string dir_;
};

// key -> values of every row of every part.
std::map<std::string, std::vector<double>> ParseRows(const std::string& text, int* duplicates) {
  std::map<std::string, std::vector<double>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, v;
    std::getline(fields, key, ',');
    std::vector<double> values;
    while (std::getline(fields, v, ',')) values.push_back(std::stod(v));
    if (!rows.emplace(key, values).second) ++*duplicates;
  }
  return rows;
}

std::string Concat(const std::map<std::string, std::string>& parts) {
  std::string all;
  for (const auto& [name, text] : parts) all += text;
  return all;
}

TEST(InferJob, OutputsEqualTheTorchScriptModelRunDirectly) {
  InferJob job("equal");
  WriteWhole(job.dir() + "/rows.csv", TinyRows(20000));
  job.WriteSpec(JobOptions{});
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;

  std::string reference;
  ASSERT_EQ(RunCommand({"/usr/bin/python3", SOURCE_DIR "/tests/infer/reference_predict.py",
                        "--model", kFixtures + "/tiny.pt", "--csv", job.dir() + "/rows.csv",
                        "--key", "id", "--dense", "d0,d1,d2,d3", "--sparse", "c0,c1"},
                       &reference),
            0)
      << reference;
  int dup_ours = 0, dup_ref = 0;
  auto ours = ParseRows(Concat(job.Parts()), &dup_ours);
  auto ref = ParseRows(reference, &dup_ref);
  EXPECT_EQ(dup_ours, 0);
  ASSERT_EQ(ref.size(), 20000u);
  ASSERT_EQ(ours.size(), ref.size());
  double worst = 0;
  for (const auto& [key, values] : ref) {
    auto it = ours.find(key);
    ASSERT_NE(it, ours.end()) << key;
    ASSERT_EQ(it->second.size(), values.size()) << key;
    for (size_t i = 0; i < values.size(); ++i) {
      worst = std::max(worst, std::abs(it->second[i] - values[i]));
    }
  }
  EXPECT_LE(worst, 1e-6);
  EXPECT_EQ(job.Errors(), "");
}

TEST(InferJob, SequentialModeGivesTheSameBytesAsThePipeline) {
  InferJob pipelined("pipelined"), sequential("sequential");
  const std::string rows = TinyRows(6000, 7);
  for (InferJob* j : {&pipelined, &sequential}) WriteWhole(j->dir() + "/rows.csv", rows);
  pipelined.WriteSpec(JobOptions{});
  JobOptions seq;
  seq.mode = "sequential";
  sequential.WriteSpec(seq);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", pipelined.spec()}, &log), 0) << log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", sequential.spec()}, &log), 0) << log;
  EXPECT_EQ(pipelined.Parts().size(), 6u);
  EXPECT_EQ(pipelined.Parts(), sequential.Parts());
}

TEST(InferJob, WorkerKilledMidJobGivesTheSameOutputAsAFaultFreeRun) {
  const std::string rows = TinyRows(300000, 3);
  JobOptions options;
  options.records_per_shard = 5000;
  options.batch_size = 256;
  InferJob clean("clean"), faulty("faulty");
  for (InferJob* j : {&clean, &faulty}) {
    WriteWhole(j->dir() + "/rows.csv", rows);
    j->WriteSpec(options);
  }
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", clean.spec()}, &log), 0) << log;
  const auto expected = clean.Parts();
  ASSERT_EQ(expected.size(), 60u);

  pid_t run = Spawn({BATON_BIN, "run", faulty.spec()}, faulty.dir() + "/run.log", "");
  // Kill one worker once some shards are committed and most are not. The workers are frozen
  // first so that the job cannot finish between the count and the kill on a fast machine.
  size_t committed_at_kill = 0;
  pid_t victim = 0;
  for (int i = 0; i < 6000 && victim == 0; ++i) {
    std::this_thread::sleep_for(5ms);
    if (faulty.PartCount() < 3) continue;
    auto workers = InferWorkers(faulty.spec());
    if (workers.empty()) continue;
    for (pid_t w : workers) ::kill(w, SIGSTOP);
    committed_at_kill = faulty.PartCount();
    victim = workers[0];
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    for (pid_t w : workers) ::kill(w, SIGCONT);
  }
  ASSERT_NE(victim, 0) << "no worker to kill";
  EXPECT_LT(committed_at_kill, expected.size()) << "the job ended before the kill";
  ASSERT_EQ(WaitFor(run, 240s), 0) << ReadWhole(faulty.dir() + "/run.log");
  EXPECT_EQ(faulty.Parts(), expected);  // same files, same bytes: nothing lost or doubled
  EXPECT_NE(ReadWhole(faulty.dir() + "/run.log").find("restarts 1"), std::string::npos)
      << ReadWhole(faulty.dir() + "/run.log");
}

TEST(InferJob, HungPredictorIsRestartedAndItsShardRetriedThenSetAside) {
  InferJob job("hang");
  std::string rows = TinyRows(4000, 5);
  // Record 1500 (shard 1 of 4) makes hang.pt spin forever.
  const std::string victim = "r1500,";
  size_t at = rows.find("\n" + victim);
  ASSERT_NE(at, std::string::npos);
  size_t end = rows.find('\n', at + 1);
  rows.replace(at + 1, end - at - 1, "r1500,-999,0,0,0,1,2");
  WriteWhole(job.dir() + "/rows.csv", rows);
  JobOptions o;
  o.model = "hang.pt";
  o.per_node = 1;
  // Long enough that a healthy first call starved of CPU is not taken for a hang.
  o.extra_infer = "  predict_timeout_ms: 3000\n";
  o.extra_top = "failure: {max_shard_retries: 1, allow_partial: true}\n";
  job.WriteSpec(o);
  // The spec's worker section has restart_backoff_ms; give the worker room for the restarts.
  std::string spec = ReadWhole(job.spec());
  spec.replace(spec.find("  restart_backoff_ms"), 0, "  restart_budget: 5\n");
  WriteWhole(job.spec(), spec);

  std::string log;
  EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  EXPECT_NE(log.find("PARTIAL"), std::string::npos) << log;
  EXPECT_NE(log.find("shard 1 after 2 attempts"), std::string::npos) << log;
  EXPECT_NE(log.find("exited with code 75"), std::string::npos) << log;
  const std::string node_log = job.NodeLogs();
  // Hung on the first attempt and again on the retry, restarted after each.
  size_t hangs = 0;
  for (size_t p = node_log.find("the predictor hung"); p != std::string::npos;
       p = node_log.find("the predictor hung", p + 1)) {
    ++hangs;
  }
  EXPECT_EQ(hangs, 2u) << node_log;
  auto parts = job.Parts();
  EXPECT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts.count("part-00000001.csv"), 0u);
}

TEST(InferJob, CorruptRowsGoToTheErrorsFileAndTheRestIsPredicted) {
  InferJob job("corrupt");
  std::string rows = TinyRows(3000, 9);
  auto corrupt = [&](const std::string& key, const std::string& line) {
    size_t at = rows.find("\n" + key + ",");
    size_t end = rows.find('\n', at + 1);
    rows.replace(at + 1, end - at - 1, line);
  };
  corrupt("r10", "r10,1,2,abc,4,5,6");  // not a number
  corrupt("r20", "r20,1,2,3,4,5");      // a field short
  corrupt("r30", "r30,1,2,3,4,5,100");  // parses, but the model rejects the id
  WriteWhole(job.dir() + "/rows.csv", rows);
  job.WriteSpec(JobOptions{});
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  const std::string errors = job.Errors();
  EXPECT_NE(errors.find(R"("error":"column d2: expected a number, got \"abc\"")"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find(R"("key":"r20","record":20,"stage":"parse")"), std::string::npos) << errors;
  EXPECT_NE(errors.find(R"("key":"r30","record":30,"stage":"predict:m")"), std::string::npos)
      << errors;
  EXPECT_NE(errors.find("out of bounds"), std::string::npos) << errors;
  int dup = 0;
  auto ours = ParseRows(Concat(job.Parts()), &dup);
  EXPECT_EQ(ours.size(), 2997u);
  EXPECT_EQ(ours.count("r10") + ours.count("r20") + ours.count("r30"), 0u);
  EXPECT_EQ(ours.count("r31"), 1u);  // its batch-mates were predicted
}

TEST(InferJob, CorruptImageGoesToTheErrorsFile) {
  InferJob job("images");
  std::string out;
  ASSERT_EQ(RunCommand({"/usr/bin/python3", SOURCE_DIR "/examples/infer-vision/generate_images.py",
                        job.dir() + "/images", "--count", "12", "--size", "48", "--corrupt", "1"},
                       &out),
            0)
      << out;
  WriteWhole(job.spec(),
             "name: img\nkind: infer\ninput:\n  paths: [images/manifest.txt]\n"
             "  format: images\n  records_per_shard: 4\noutput:\n  dir: out\n"
             "master:\n  state_dir: state\ninfer:\n  max_error_rate: 0.3\n"
             "  image: {width: 32, height: 32}\n  models:\n    - {name: tiny, path: " +
                 kFixtures + "/tiny_image.pt, batch_size: 3, outputs: [features]}\n");
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  const std::string errors = job.Errors();
  EXPECT_NE(errors.find("\"stage\":\"decode\""), std::string::npos) << errors;
  EXPECT_NE(errors.find("cannot decode image"), std::string::npos) << errors;
  size_t lines = 0;
  for (const auto& [name, text] : job.Parts()) {
    lines += static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
    EXPECT_NE(text.find("\"features\":["), std::string::npos) << text;
  }
  EXPECT_EQ(lines, 11u);
}

TEST(InferJob, DagClassifiesEveryCropTheProposerEmits) {
  InferJob job("dag");
  std::string out;
  ASSERT_EQ(RunCommand({"/usr/bin/python3", SOURCE_DIR "/examples/infer-vision/generate_images.py",
                        job.dir() + "/images", "--count", "40", "--size", "64"},
                       &out),
            0)
      << out;
  WriteWhole(job.spec(),
             "name: dag\nkind: infer\ninput:\n  paths: [images/manifest.txt]\n"
             "  format: images\n  records_per_shard: 10\noutput:\n  dir: out\n  suffix: .csv\n"
             "master:\n  state_dir: state\ninfer:\n  image: {width: 32, height: 32}\n  models:\n"
             "    - {name: det, path: " +
                 kFixtures +
                 "/tiny_proposer.pt, batch_size: 4}\n"
                 "    - {name: cls, path: " +
                 kFixtures +
                 "/tiny_image.pt, after: det, emit: crops, crop_width: 16, crop_height: 16,"
                 " batch_size: 5, predictors: 2}\n");
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  // image -> the crop items the classifier wrote (the proposer itself writes nothing by default).
  std::map<std::string, std::string> items;
  std::istringstream rows(Concat(job.Parts()));
  std::string line;
  while (std::getline(rows, line)) {
    std::istringstream fields(line);
    std::string key, model, item;
    std::getline(fields, key, ',');
    std::getline(fields, model, ',');
    std::getline(fields, item, ',');
    EXPECT_EQ(model, "cls") << line;
    items[key] += item;
  }
  // truth.csv: which of the 8 cells the generator filled, e.g. "img_000003.jpg,01001000".
  std::istringstream truth(ReadWhole(job.dir() + "/images/truth.csv"));
  std::getline(truth, line);  // header
  int images = 0, crops = 0, empty = 0;
  while (std::getline(truth, line)) {
    const std::string key = line.substr(0, line.find(','));
    const std::string cells = line.substr(line.find(',') + 1);
    std::string expected;
    for (size_t k = 0; k < cells.size(); ++k) {
      if (cells[k] == '1') expected += std::to_string(k);
    }
    EXPECT_EQ(items[key], expected) << key;
    ++images;
    crops += static_cast<int>(expected.size());
    empty += expected.empty() ? 1 : 0;
  }
  EXPECT_EQ(images, 40);
  EXPECT_GT(crops, 40);  // 0-8 crops an image: the classifier saw a variable fan-out
  EXPECT_GT(empty, 0);   // ...including images without any
  EXPECT_EQ(job.Errors(), "");
}

TEST(InferJob, BadModelOrSchemaIsReportedBeforeAnyWorkerStarts) {
  struct Case {
    std::string model, columns, expect;
  };
  const std::vector<Case> cases = {
      {"missing.pt", "[d0..d3]",
       "infer.models[m].path: model file " + kFixtures + "/missing.pt does not exist"},
      {"three_inputs.pt", "[d0..d3]",
       "the model's forward() takes 3 input(s) (dense, sparse, extra) but the spec feeds it 2"},
      {"wrong_width.pt", "[d0..d3]",
       "the model rejects inputs shaped like the spec's (dense [N,4]"},
      {"tiny.pt", "[d0, d1, d2, d9]", "unknown column \"d9\""},
  };
  for (const Case& c : cases) {
    InferJob job("preflight");
    WriteWhole(job.dir() + "/rows.csv", TinyRows(10));
    JobOptions o;
    o.model = c.model;
    job.WriteSpec(o);
    std::string spec = ReadWhole(job.spec());
    spec.replace(spec.find("[d0..d3]"), 8, c.columns);
    WriteWhole(job.spec(), spec);
    std::string log;
    EXPECT_EQ(RunCommand({BATON_BIN, "validate", job.spec()}, &log), 2) << log;
    EXPECT_NE(log.find(c.expect), std::string::npos) << log;
    EXPECT_NE(log.find(job.spec() + ":"), std::string::npos) << log;  // FILE:LINE
    EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 2) << log;
    EXPECT_NE(log.find(c.expect), std::string::npos) << log;
    EXPECT_FALSE(fs::exists(job.state())) << "started something for " << c.model;
  }
}

TEST(InferJob, WorkerOverItsMemoryLimitIsRestartedThenGivenUpOn) {
  InferJob job("memory");
  WriteWhole(job.dir() + "/rows.csv", TinyRows(2000));
  JobOptions o;
  o.per_node = 1;
  o.extra_infer = "  memory_limit_mb: 16\n";  // less than libtorch alone needs
  job.WriteSpec(o);
  std::string spec = ReadWhole(job.spec());
  spec.replace(spec.find("  restart_backoff_ms"), 0, "  restart_budget: 1\n");
  WriteWhole(job.spec(), spec);
  std::string log;
  EXPECT_NE(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  const std::string node_log = job.NodeLogs();
  EXPECT_NE(node_log.find("is over infer.memory_limit_mb 16"), std::string::npos) << node_log;
  EXPECT_NE(node_log.find("76"), std::string::npos) << node_log;
}

TEST(InferJob, ScaleChangesTheWorkerCountWithoutStoppingTheJob) {
  InferJob job("scale");
  WriteWhole(job.dir() + "/rows.csv", TinyRows(60000, 11));
  JobOptions o;
  o.model = "slow.pt";
  o.per_node = 1;
  o.records_per_shard = 2000;
  o.batch_size = 64;
  o.extra_infer = "  intra_op_threads: 1\n";
  job.WriteSpec(o);
  pid_t run = Spawn({BATON_BIN, "run", job.spec()}, job.dir() + "/run.log", "");
  auto wait_until = [](auto done, std::chrono::seconds limit) {
    for (auto end = std::chrono::steady_clock::now() + limit;
         std::chrono::steady_clock::now() < end; std::this_thread::sleep_for(10ms)) {
      if (done()) return true;
    }
    return done();
  };
  ASSERT_TRUE(wait_until([&] { return job.PartCount() >= 2; }, 60s))
      << ReadWhole(job.dir() + "/run.log");
  // Freeze the only worker so the job cannot finish on its own, whatever this machine's speed:
  // any part committed from now on comes from the worker that `baton scale` adds.
  const std::vector<pid_t> first = InferWorkers(job.spec());
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(::kill(first[0], SIGSTOP), 0);
  // A commit already in flight at the master may still land: wait until the count holds still.
  size_t parts_before = job.PartCount();
  for (size_t settled = 0; settled != parts_before; parts_before = job.PartCount()) {
    settled = parts_before;
    std::this_thread::sleep_for(300ms);
  }
  ASSERT_LT(parts_before, 30u);
  std::string out;
  ASSERT_EQ(RunCommand({BATON_BIN, "scale", "--state-dir", job.state(), "--workers", "2"}, &out), 0)
      << out;
  size_t max_workers = 0;
  const bool second_worked = wait_until(
      [&] {
        max_workers = std::max(max_workers, InferWorkers(job.spec()).size());
        return max_workers >= 2 && job.PartCount() > parts_before;
      },
      60s);
  ::kill(first[0], SIGCONT);
  EXPECT_EQ(max_workers, 2u);
  EXPECT_TRUE(second_worked) << "no part was committed while the first worker was stopped";
  ASSERT_EQ(WaitFor(run, 240s), 0) << ReadWhole(job.dir() + "/run.log");
  int dup = 0;
  EXPECT_EQ(ParseRows(Concat(job.Parts()), &dup).size(), 60000u);
  EXPECT_EQ(dup, 0);
}

// Replaces the line of the record with key `key` (e.g. "r10") by `line`.
void ReplaceRow(std::string* rows, const std::string& key, const std::string& line) {
  size_t at = rows->find("\n" + key + ",");
  ASSERT_NE(at, std::string::npos) << key;
  size_t end = rows->find('\n', at + 1);
  rows->replace(at + 1, end - at - 1, line);
}

// Every line of `text` parsed by a real JSON parser (a line that does not parse fails the test).
std::vector<nlohmann::json> JsonLines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << "not JSON: " << line;
    out.push_back(std::move(j));
  }
  return out;
}

// The value of a counter in `baton run`'s final status ("    counters: a=1 b=2"), summed over
// workers; 0 when absent.
uint64_t Counter(const std::string& log, const std::string& name) {
  uint64_t sum = 0;
  const std::string needle = " " + name + "=";
  for (size_t p = log.find(needle); p != std::string::npos; p = log.find(needle, p + 1)) {
    sum += std::stoull(log.substr(p + needle.size()));
  }
  return sum;
}

TEST(InferJob, BlankLinesAreNoRecordsWhereverTheyAre) {
  // The issue's case: a trailing blank line alone in the last shard failed the job.
  InferJob trailing("blank-trailing");
  WriteWhole(trailing.dir() + "/rows.csv", TinyRows(2000) + "\n");
  JobOptions o;
  o.records_per_shard = 500;
  trailing.WriteSpec(o);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", trailing.spec()}, &log), 0) << log;
  int dup = 0;
  EXPECT_EQ(ParseRows(Concat(trailing.Parts()), &dup).size(), 2000u);
  EXPECT_EQ(trailing.Errors(), "");
  EXPECT_EQ(Counter(log, "blank_lines"), 1u) << log;

  // Blank lines inside, at the end of a shard, whitespace-only, with "\r\n" endings, a final line
  // without a newline, and one bad row: all rows but the bad one are predicted and the bad one is
  // the only error, at its line's record index.
  InferJob mixed("blank-mixed");
  std::string rows = TinyRows(2000, 4);
  ReplaceRow(&rows, "r7", "r7,1,2,x,4,5,6");
  rows.insert(rows.find("\nr10,") + 1, "\n");           // record 10 is blank; r10 is record 11
  rows.insert(rows.find("\nr20,") + 1, " \t\r\n\r\n");  // two more
  rows.insert(rows.find("\nr1000,") + 1, "\n\n\n");
  rows.insert(rows.find("\nr1500,") + 1, "\r\n \r\n");  // blank "\r\n" lines
  rows.replace(rows.find("\nr30,"), 1, "\r\n");         // a "\r\n" line ending
  rows.pop_back();                                      // no final newline
  WriteWhole(mixed.dir() + "/rows.csv", rows);
  mixed.WriteSpec(o);
  ASSERT_EQ(RunCommand({BATON_BIN, "run", mixed.spec()}, &log), 0) << log;
  auto ours = ParseRows(Concat(mixed.Parts()), &dup);
  EXPECT_EQ(ours.size(), 1999u);
  EXPECT_EQ(ours.count("r7"), 0u);
  EXPECT_EQ(ours.count("r1999"), 1u);
  EXPECT_EQ(dup, 0);
  const auto errors = JsonLines(mixed.Errors());
  ASSERT_EQ(errors.size(), 1u) << mixed.Errors();
  EXPECT_EQ(errors[0]["key"], "r7");
  EXPECT_EQ(errors[0]["record"], 7);
  EXPECT_EQ(Counter(log, "blank_lines"), 8u) << log;
}

TEST(InferJob, EveryRecordOfAShardFailedForItsErrorRateIsInTheErrorsFile) {
  InferJob job("error-rate");
  std::string rows = TinyRows(1000, 6);
  for (int i = 500; i < 520; ++i) {  // 20 bad rows in shard 1, 4% > max_error_rate 1%
    ReplaceRow(&rows, "r" + std::to_string(i), "r" + std::to_string(i) + ",bad,0,0,0,1,2");
  }
  WriteWhole(job.dir() + "/rows.csv", rows);
  JobOptions o;
  o.records_per_shard = 500;
  o.extra_top = "failure: {max_shard_retries: 1, allow_partial: true}\n";
  job.WriteSpec(o);
  std::string log;
  EXPECT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  // The reason names the worker whose attempt failed last, then the worker's own cause.
  EXPECT_TRUE(std::regex_search(
      log, std::regex("shard 1 after 2 attempts: worker node-0/[01]: 20 of 500 records failed")))
      << log;
  EXPECT_EQ(job.Parts().count("part-00000001.csv"), 0u);
  const auto errors = JsonLines(job.Errors());
  ASSERT_EQ(errors.size(), 20u) << job.Errors();
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_EQ(errors[i]["stage"], "parse");
    EXPECT_GE(errors[i]["record"].get<int>(), 500);
    EXPECT_LT(errors[i]["record"].get<int>(), 520);
  }
}

TEST(InferJob, NaNAndInfinityOutputsAreValidJsonByPolicy) {
  const std::string rows = TinyRows(2000, 8);
  // What non_finite.pt does: NaN in column 0 where d0 > 8, -inf/+inf in column 1 where d1 < -8
  // or d1 > 8.
  size_t nan = 0, minus_inf = 0, plus_inf = 0, any = 0;
  std::map<std::string, std::pair<bool, int>> expect;  // key -> (NaN, -1/0/+1 infinity)
  {
    std::istringstream in(rows);
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line)) {
      std::vector<std::string> f;
      std::istringstream fields(line);
      for (std::string v; std::getline(fields, v, ',');) f.push_back(v);
      const bool n = std::stod(f[1]) > 8;
      const int inf = std::stod(f[2]) < -8 ? -1 : std::stod(f[2]) > 8 ? 1 : 0;
      expect[f[0]] = {n, inf};
      nan += n;
      minus_inf += inf < 0;
      plus_inf += inf > 0;
      any += n || inf != 0;
    }
  }
  ASSERT_GT(nan, 10u);
  ASSERT_GT(minus_inf, 10u);
  ASSERT_GT(plus_inf, 10u);

  InferJob nulls("nonfinite-null");
  WriteWhole(nulls.dir() + "/rows.csv", rows);
  JobOptions o;
  o.model = "non_finite.pt";
  o.suffix = ".jsonl";
  o.per_node = 1;
  nulls.WriteSpec(o);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", nulls.spec()}, &log), 0) << log;
  const auto lines = JsonLines(Concat(nulls.Parts()));
  ASSERT_EQ(lines.size(), 2000u);
  for (const auto& j : lines) {
    const auto& [n, inf] = expect.at(j["key"].get<std::string>());
    const auto& v = j["out0"];
    ASSERT_EQ(v.size(), 2u) << j.dump();
    EXPECT_EQ(v[0].is_null(), n) << j.dump();
    EXPECT_EQ(v[1].is_null(), inf != 0) << j.dump();
  }
  EXPECT_EQ(Counter(log, "non_finite_rows"), any) << log;
  EXPECT_EQ(nulls.Errors(), "");
  EXPECT_NE(nulls.NodeLogs().find("model m returned NaN or infinite values"), std::string::npos);

  // infer.non_finite: error: those records go to the errors file instead, each once.
  InferJob refused("nonfinite-error");
  WriteWhole(refused.dir() + "/rows.csv", rows);
  o.extra_infer = "  non_finite: error\n  max_error_rate: 1\n";
  refused.WriteSpec(o);
  ASSERT_EQ(RunCommand({BATON_BIN, "run", refused.spec()}, &log), 0) << log;
  EXPECT_EQ(JsonLines(Concat(refused.Parts())).size(), 2000u - any);
  const auto errors = JsonLines(refused.Errors());
  EXPECT_EQ(errors.size(), any);
  for (const auto& e : errors) {
    EXPECT_EQ(e["stage"], "output:m");
    const auto& [n, inf] = expect.at(e["key"].get<std::string>());
    EXPECT_TRUE(n || inf != 0) << e.dump();
    EXPECT_NE(e["error"].get<std::string>().find("(infer.non_finite: error)"), std::string::npos);
  }
}

std::string DecodeBase64(const std::string& in) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    acc = (acc << 6) | static_cast<uint32_t>(alphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

TEST(InferJob, KeysThatAreNotUtf8StayDistinctInJsonl) {
  InferJob job("utf8");
  std::string rows = TinyRows(2000, 10);
  // Two keys that differ only in an invalid byte, one that is U+FFFD spelled right, and one bad
  // row whose key is not UTF-8 either (it goes to the errors file).
  ReplaceRow(&rows, "r5", "k\xff,1,2,3,4,5,6");
  ReplaceRow(&rows, "r6", "k\xfe,1,2,3,4,5,6");
  ReplaceRow(&rows, "r7", "k\xef\xbf\xbd,1,2,3,4,5,6");
  ReplaceRow(&rows, "r8", "bad\xff,1,2,x,4,5,6");
  WriteWhole(job.dir() + "/rows.csv", rows);
  JobOptions o;
  o.suffix = ".jsonl";
  job.WriteSpec(o);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  std::set<std::string> keys;
  for (const auto& j : JsonLines(Concat(job.Parts()))) {
    keys.insert(j.contains("key") ? j["key"].get<std::string>()
                                  : DecodeBase64(j["key_base64"].get<std::string>()));
  }
  EXPECT_EQ(keys.size(), 1999u);
  EXPECT_EQ(keys.count("k\xff") + keys.count("k\xfe") + keys.count("k\xef\xbf\xbd"), 3u);
  const auto errors = JsonLines(job.Errors());
  ASSERT_EQ(errors.size(), 1u) << job.Errors();
  EXPECT_EQ(DecodeBase64(errors[0]["key_base64"].get<std::string>()), "bad\xff");
  EXPECT_EQ(errors[0]["record"], 8);
}

TEST(InferJob, WrongRowCountForLargeBatchesIsRescuedLoggedOnceAndCounted) {
  InferJob ref("miscount-ref"), job("miscount");
  const std::string rows = TinyRows(2000, 12);
  JobOptions o;
  o.per_node = 1;  // one worker: one warning, every count in one place
  for (InferJob* j : {&ref, &job}) WriteWhole(j->dir() + "/rows.csv", rows);
  ref.WriteSpec(o);
  o.model = "miscount.pt";
  job.WriteSpec(o);
  std::string log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", ref.spec()}, &log), 0) << log;
  ASSERT_EQ(RunCommand({BATON_BIN, "run", job.spec()}, &log), 0) << log;
  // Record by record the model is right: the output of tiny.pt (to float rounding: a batch of
  // one may take other kernels than a batch of 100), nothing lost.
  int dup = 0;
  const auto ours = ParseRows(Concat(job.Parts()), &dup);
  const auto expected = ParseRows(Concat(ref.Parts()), &dup);
  EXPECT_EQ(dup, 0);
  ASSERT_EQ(ours.size(), 2000u);
  ASSERT_EQ(expected.size(), 2000u);
  for (const auto& [key, values] : expected) {
    ASSERT_EQ(ours.at(key).size(), values.size()) << key;
    for (size_t i = 0; i < values.size(); ++i) EXPECT_NEAR(ours.at(key)[i], values[i], 1e-6);
  }
  EXPECT_EQ(job.Errors(), "");
  // 2000 records in batches of 100: every batch came back a row short.
  EXPECT_EQ(Counter(log, "m.wrong_row_count_batches"), 20u) << log;
  const std::string node_log = job.NodeLogs();
  const std::string warning = "model m: the model returned 99 rows for a batch of 100";
  const size_t first = node_log.find(warning);
  EXPECT_NE(first, std::string::npos) << node_log;
  EXPECT_EQ(node_log.find(warning, first + 1), std::string::npos) << node_log;
}

}  // namespace
