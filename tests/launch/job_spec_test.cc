#include "spec/job_spec.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace baton {
namespace {

namespace fs = std::filesystem;

// Each test gets its own directory with the spec and its data, removed afterwards.
class JobSpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "job_spec_test.XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    spec_ = dir_ + "/job.yaml";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `contents` to `relative` under the test directory, creating parents.
  std::string Write(const std::string& relative, const std::string& contents) {
    fs::path p = fs::path(dir_) / relative;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << contents;
    return p.string();
  }

  std::string WriteExecutable(const std::string& relative) {
    std::string p = Write(relative, "#!/bin/sh\nexit 0\n");
    fs::permissions(p, fs::perms::owner_all);
    return p;
  }

  Result<JobSpec> Load(const std::string& yaml) {
    Write("job.yaml", yaml);
    return LoadJobSpec(spec_);
  }

  // The problems of a failed load, one per element.
  std::vector<std::string> Problems(const std::string& yaml) {
    Result<JobSpec> r = Load(yaml);
    EXPECT_FALSE(r.ok());
    if (r.ok()) return {};
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    std::vector<std::string> lines;
    std::string text = r.status().message();
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      lines.push_back(text.substr(start, end - start));
      start = end + 1;
    }
    return lines;
  }

  // "SPEC:LINE: rest", as every problem is printed.
  std::string At(int line, const std::string& rest) {
    return spec_ + ":" + std::to_string(line) + ": " + rest;
  }

  std::string dir_;
  std::string spec_;
};

TEST_F(JobSpecTest, FullSpecSetsEveryField) {
  Write("data/a.csv", "h\n1\n2\n");
  WriteExecutable("bin/worker");
  Result<JobSpec> r = Load(R"(name: full-job.v2
nodes: 3
spare_nodes: 1
input:
  paths: [data/a.csv]
  format: csv
  records_per_shard: 500
  skip_header: true
  epochs: 2
  shuffle: true
  seed: 18446744073709551615
output:
  dir: out
  suffix: .tsv
worker:
  command: [bin/worker, --flag, "x y"]
  env:
    MODE: fast
    THREADS: 4
  per_node: 2
  restart_budget: 0
  restart_backoff_ms: 100
  restart_backoff_max_ms: 2000
  stop_grace_ms: 750
master:
  host: 0.0.0.0
  port: 7070
  metrics_port: 9090
  state_dir: /var/tmp/baton-state
timeouts:
  lease_ms: 5000
  heartbeat_interval_ms: 200
  node_dead_ms: 3000
  speed_window_ms: 4000
  master_unreachable_ms: 60000
  agents_gone_ms: 90000
failure:
  max_shard_retries: 7
  allow_partial: true
  max_error_bytes: 256
  master_restarts: 1
)");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const JobSpec& s = *r;
  EXPECT_EQ(s.name, "full-job.v2");
  EXPECT_EQ(s.spec_path, spec_);
  EXPECT_EQ(s.base_dir, dir_);
  EXPECT_EQ(s.nodes, 3);
  EXPECT_EQ(s.spare_nodes, 1);
  EXPECT_EQ(s.input.paths, std::vector<std::string>{dir_ + "/data/a.csv"});
  EXPECT_EQ(s.input.format, RecordFormat::kCsv);
  EXPECT_EQ(s.input.records_per_shard, 500);
  EXPECT_TRUE(s.input.skip_header);
  EXPECT_EQ(s.input.epochs, 2);
  EXPECT_TRUE(s.input.shuffle);
  EXPECT_EQ(s.input.seed, 18446744073709551615ULL);
  EXPECT_EQ(s.output.dir, dir_ + "/out");
  EXPECT_EQ(s.output.suffix, ".tsv");
  EXPECT_EQ(s.worker.command, (std::vector<std::string>{dir_ + "/bin/worker", "--flag", "x y"}));
  EXPECT_EQ(s.worker.env, (std::map<std::string, std::string>{{"MODE", "fast"}, {"THREADS", "4"}}));
  EXPECT_EQ(s.worker.per_node, 2);
  EXPECT_EQ(s.worker.restart_budget, 0);
  EXPECT_EQ(s.worker.restart_backoff_ms, 100);
  EXPECT_EQ(s.worker.restart_backoff_max_ms, 2000);
  EXPECT_EQ(s.worker.stop_grace_ms, 750);
  EXPECT_EQ(s.master.host, "0.0.0.0");
  EXPECT_EQ(s.master.port, 7070);
  EXPECT_EQ(s.master.metrics_port, 9090);
  EXPECT_EQ(s.master.state_dir, "/var/tmp/baton-state");
  EXPECT_EQ(s.timeouts.lease_ms, 5000);
  EXPECT_EQ(s.timeouts.heartbeat_interval_ms, 200);
  EXPECT_EQ(s.timeouts.node_dead_ms, 3000);
  EXPECT_EQ(s.timeouts.speed_window_ms, 4000);
  EXPECT_EQ(s.timeouts.master_unreachable_ms, 60000);
  EXPECT_EQ(s.timeouts.agents_gone_ms, 90000);
  EXPECT_EQ(s.failure.max_shard_retries, 7);
  EXPECT_TRUE(s.failure.allow_partial);
  EXPECT_EQ(s.failure.max_error_bytes, 256);
  EXPECT_EQ(s.failure.master_restarts, 1);
}

TEST_F(JobSpecTest, AbsentKeysTakeTheirDefaults) {
  Write("in.txt", "one\n");
  Result<JobSpec> r = Load("name: j\ninput:\n  paths: [in.txt]\nworker:\n  command: [cat]\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const JobSpec& s = *r;
  const JobSpec d;  // the header's defaults
  EXPECT_EQ(s.nodes, 1);
  EXPECT_EQ(s.spare_nodes, 0);
  EXPECT_EQ(s.input.format, RecordFormat::kLines);
  EXPECT_EQ(s.input.records_per_shard, 10000);
  EXPECT_FALSE(s.input.skip_header);
  EXPECT_EQ(s.input.epochs, 1);
  EXPECT_FALSE(s.input.shuffle);
  EXPECT_EQ(s.input.seed, 0u);
  EXPECT_EQ(s.output.dir, "");
  EXPECT_EQ(s.output.suffix, "");
  EXPECT_EQ(s.worker.command, std::vector<std::string>{"cat"});  // left for PATH lookup
  EXPECT_TRUE(s.worker.env.empty());
  EXPECT_EQ(s.worker.per_node, d.worker.per_node);
  EXPECT_EQ(s.worker.restart_budget, 3);
  EXPECT_EQ(s.worker.restart_backoff_ms, 500);
  EXPECT_EQ(s.worker.restart_backoff_max_ms, 10000);
  EXPECT_EQ(s.worker.stop_grace_ms, 5000);
  EXPECT_EQ(s.master.host, "127.0.0.1");
  EXPECT_EQ(s.master.port, 0);
  EXPECT_EQ(s.master.metrics_port, 0);
  EXPECT_EQ(s.master.state_dir, dir_ + "/.baton/j");
  EXPECT_EQ(s.timeouts.lease_ms, 30000);
  EXPECT_EQ(s.timeouts.heartbeat_interval_ms, 1000);
  EXPECT_EQ(s.timeouts.node_dead_ms, 10000);
  EXPECT_EQ(s.timeouts.speed_window_ms, 10000);
  EXPECT_EQ(s.timeouts.master_unreachable_ms, 120000);
  EXPECT_EQ(s.timeouts.agents_gone_ms, 600000);
  EXPECT_EQ(s.failure.max_shard_retries, 3);
  EXPECT_FALSE(s.failure.allow_partial);
  EXPECT_EQ(s.failure.max_error_bytes, 1024);
  EXPECT_EQ(s.failure.master_restarts, 5);
}

TEST_F(JobSpecTest, MalformedYamlIsOneLineWithLineAndColumn) {
  EXPECT_EQ(
      Problems("name: j\ninput:\n  paths: [a.txt\nworker: {}\n"),
      std::vector<std::string>{spec_ + ":4:7: malformed YAML: end of sequence flow not found"});
}

TEST_F(JobSpecTest, UnknownKeyIsReportedWithLineAndSuggestion) {
  Write("in.txt", "x\n");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [in.txt]\n  recrds_per_shard: 10\n"
                     "worker:\n  command: [cat]\n"),
            std::vector<std::string>{At(
                4, "input.recrds_per_shard: unknown key (did you mean \"records_per_shard\"?)")});
}

TEST_F(JobSpecTest, KeyAtTheWrongLevelSuggestsItsSection) {
  Write("in.txt", "x\n");
  EXPECT_EQ(
      Problems("name: j\nlease_ms: 100\ninput:\n  paths: [in.txt]\nworker:\n  command: [cat]\n"),
      std::vector<std::string>{
          At(2, "lease_ms: unknown key (did you mean \"timeouts.lease_ms\"?)")});
}

TEST_F(JobSpecTest, UnknownKeyWithoutCloseMatchListsTheKnownKeys) {
  Write("in.txt", "x\n");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [in.txt]\noutput:\n  compression: gzip\n"
                     "worker:\n  command: [cat]\n"),
            std::vector<std::string>{
                At(5, "output.compression: unknown key (expected one of: dir, suffix)")});
}

TEST_F(JobSpecTest, WrongTypesNameTheExpectedAndTheActualValue) {
  Write("in.txt", "x\n");
  EXPECT_EQ(Problems(R"(name: j
nodes: "2"
input:
  paths: in.txt
  records_per_shard: ten
  skip_header: maybe
worker:
  command: [cat]
  env: [A=1]
master: [localhost]
)"),
            (std::vector<std::string>{
                At(2, "nodes: expected a positive integer, got the string \"2\""),
                At(4,
                   "input.paths: expected a non-empty list of input files or directories, "
                   "got \"in.txt\""),
                At(5, "input.records_per_shard: expected a positive integer, got \"ten\""),
                At(6, "input.skip_header: expected true or false, got \"maybe\""),
                At(9, "worker.env: expected a mapping of variable names to strings, got a list"),
                At(10, "master: expected a mapping of keys, got a list"),
            }));
}

TEST_F(JobSpecTest, OutOfRangeValuesAreRejected) {
  Write("in.txt", "x\n");
  EXPECT_EQ(Problems(R"(name: j
nodes: 0
input:
  paths: [in.txt]
  format: xml
  records_per_shard: 0
  epochs: -1
  seed: -5
worker:
  command: [cat]
  per_node: 1025
  restart_budget: -1
  restart_backoff_ms: 1000
  restart_backoff_max_ms: 10
master:
  port: 70000
  metrics_port: -1
timeouts:
  lease_ms: 99
  heartbeat_interval_ms: 5000
  node_dead_ms: 5000
  speed_window_ms: 0
  agents_gone_ms: -1
failure:
  max_shard_retries: -1
  max_error_bytes: 0
  master_restarts: 3000000000
)"),
            (std::vector<std::string>{
                At(2, "nodes: expected a positive integer, got \"0\""),
                At(5, "input.format: expected one of lines, csv, tsv, jsonl, images, got \"xml\""),
                At(6, "input.records_per_shard: expected a positive integer, got \"0\""),
                At(7, "input.epochs: expected a positive integer, got \"-1\""),
                At(8, "input.seed: expected a non-negative integer, got \"-5\""),
                At(11, "worker.per_node: expected an integer in 1..1024, got \"1025\""),
                At(12, "worker.restart_budget: expected a non-negative integer, got \"-1\""),
                At(14,
                   "worker.restart_backoff_max_ms: expected at least "
                   "worker.restart_backoff_ms (1000), got 10"),
                At(16, "master.port: expected an integer in 0..65535, got \"70000\""),
                At(17, "master.metrics_port: expected an integer in 0..65535, got \"-1\""),
                At(19, "timeouts.lease_ms: expected an integer >= 100, got \"99\""),
                At(21,
                   "timeouts.node_dead_ms: expected more than timeouts.heartbeat_interval_ms "
                   "(5000), got 5000"),
                At(22, "timeouts.speed_window_ms: expected a positive integer, got \"0\""),
                At(23, "timeouts.agents_gone_ms: expected a non-negative integer, got \"-1\""),
                At(25,
                   "failure.max_shard_retries: expected a non-negative integer, got "
                   "\"-1\""),
                At(26, "failure.max_error_bytes: expected a positive integer, got \"0\""),
                At(27,
                   "failure.master_restarts: expected a non-negative integer (at most "
                   "2147483647), got \"3000000000\""),
            }));
}

TEST_F(JobSpecTest, EveryProblemIsReportedTogetherInLineOrder) {
  // Structural problems, a missing required key and filesystem problems, all in one report.
  EXPECT_EQ(Problems(R"(name: "bad name!"
input:
  paths: [missing.txt]
  shufle: true
worker:
  per_node: two
timeouts:
  lease_ms: 0
)"),
            (std::vector<std::string>{
                At(1, "name: expected a job name matching [A-Za-z0-9_.-]+, got \"bad name!\""),
                At(3, "input.paths[0]: expected an existing file or directory, got \"" + dir_ +
                          "/missing.txt\" (does not exist)"),
                At(4, "input.shufle: unknown key (did you mean \"shuffle\"?)"),
                At(5,
                   "worker.command: expected a non-empty list: the program and its arguments, "
                   "got nothing"),
                At(6, "worker.per_node: expected an integer in 1..1024, got \"two\""),
                At(8, "timeouts.lease_ms: expected an integer >= 100, got \"0\""),
            }));
}

TEST_F(JobSpecTest, EmptySpecReportsEveryRequiredKey) {
  EXPECT_EQ(Problems("# nothing yet\n"),
            (std::vector<std::string>{
                At(1, "name: expected a job name matching [A-Za-z0-9_.-]+, got nothing"),
                At(1,
                   "input.paths: expected a non-empty list of input files or directories, got "
                   "nothing"),
                At(1,
                   "worker.command: expected a non-empty list: the program and its arguments, "
                   "got nothing"),
            }));
}

TEST_F(JobSpecTest, DuplicateKeyIsReported) {
  Write("in.txt", "x\n");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [in.txt]\nworker:\n  command: [cat]\nname: k\n"),
            std::vector<std::string>{At(6, "name: duplicate key (first set on line 1)")});
}

TEST_F(JobSpecTest, MissingInputFileIsNamedWithItsListPosition) {
  Write("a.txt", "x\n");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths:\n    - a.txt\n    - sub/b.txt\n"
                     "worker:\n  command: [cat]\n"),
            std::vector<std::string>{
                At(5, "input.paths[1]: expected an existing file or directory, got \"" + dir_ +
                          "/sub/b.txt\" (does not exist)")});
}

TEST_F(JobSpecTest, AllEmptyFilesAreAnEmptyDataset) {
  Write("data/a.txt", "");
  Write("data/b.txt", "");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [data]\nworker:\n  command: [cat]\n"),
            std::vector<std::string>{
                At(3,
                   "input.paths: expected at least one record, got an empty dataset (every file "
                   "is empty)")});
}

TEST_F(JobSpecTest, HeaderOnlyFilesWithSkipHeaderAreAnEmptyDataset) {
  Write("a.csv", "id,text\n");
  Write("b.csv", "id,text");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [a.csv, b.csv]\n  skip_header: true\n"
                     "worker:\n  command: [cat]\n"),
            std::vector<std::string>{
                At(3,
                   "input.paths: expected at least one record, got an empty dataset (every "
                   "file is empty or holds only a header)")});
}

TEST_F(JobSpecTest, HeaderOnlyFileWithoutSkipHeaderIsOneRecord) {
  Write("a.csv", "id,text\n");
  Result<JobSpec> r = Load("name: j\ninput:\n  paths: [a.csv]\nworker:\n  command: [cat]\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->input.paths, std::vector<std::string>{dir_ + "/a.csv"});
}

TEST_F(JobSpecTest, DirectoryExpandsToItsNonEmptyRegularFilesSortedByName) {
  Write("data/b.txt", "b\n");
  Write("data/a.txt", "a\n");
  Write("data/c.txt", "");            // no records: left out
  Write("data/.hidden", "h\n");       // hidden: skipped
  Write("data/nested/d.txt", "d\n");  // not a regular file of data/: skipped
  Write("z.txt", "z\n");
  Result<JobSpec> r = Load("name: j\ninput:\n  paths: [z.txt, data/]\nworker:\n  command: [cat]\n");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->input.paths, (std::vector<std::string>{dir_ + "/z.txt", dir_ + "/data/a.txt",
                                                      dir_ + "/data/b.txt"}));
}

TEST_F(JobSpecTest, FileListedTwiceIsRejected) {
  Write("data/a.txt", "a\n");
  EXPECT_EQ(Problems("name: j\ninput:\n  paths: [data, data/a.txt]\nworker:\n  command: [cat]\n"),
            std::vector<std::string>{At(3, "input.paths[1]: expected each input file once, got \"" +
                                               dir_ + "/data/a.txt\" a second time")});
}

TEST_F(JobSpecTest, RelativePathsResolveAgainstTheSpecDirectory) {
  Write("data/in.txt", "x\n");
  WriteExecutable("tools/worker");
  std::string spec_dir = dir_ + "/jobs";
  fs::create_directories(spec_dir);
  std::string spec = spec_dir + "/job.yaml";
  std::ofstream(spec) << "name: rel\ninput:\n  paths: [../data/in.txt]\noutput:\n  dir: out/\n"
                         "worker:\n  command: [../tools/worker, data/x]\n"
                         "master:\n  state_dir: ./state\n";
  Result<JobSpec> r = LoadJobSpec(spec);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->spec_path, spec);
  EXPECT_EQ(r->base_dir, spec_dir);
  EXPECT_EQ(r->input.paths, std::vector<std::string>{dir_ + "/data/in.txt"});
  EXPECT_EQ(r->output.dir, spec_dir + "/out");
  EXPECT_EQ(r->master.state_dir, spec_dir + "/state");
  // Only the program is a path; its arguments are the worker's business.
  EXPECT_EQ(r->worker.command, (std::vector<std::string>{dir_ + "/tools/worker", "data/x"}));
}

TEST_F(JobSpecTest, CommandPathMustBeAnExecutableFile) {
  Write("in.txt", "x\n");
  Write("bin/not-exec", "echo\n");
  EXPECT_EQ(
      Problems("name: j\ninput:\n  paths: [in.txt]\nworker:\n  command: [bin/not-exec]\n"),
      std::vector<std::string>{At(5, "worker.command[0]: expected an executable file, got \"" +
                                         dir_ + "/bin/not-exec\" (not executable)")});
  EXPECT_EQ(
      Problems("name: j\ninput:\n  paths: [in.txt]\nworker:\n  command: [./nope]\n"),
      std::vector<std::string>{At(5, "worker.command[0]: expected an executable file, got \"" +
                                         dir_ + "/nope\" (does not exist)")});
}

TEST_F(JobSpecTest, MissingSpecFileIsNotFound) {
  Result<JobSpec> r = LoadJobSpec(dir_ + "/absent.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(dir_ + "/absent.yaml"), std::string::npos);
}

TEST_F(JobSpecTest, ParseJobSpecUsesTheGivenPathInMessages) {
  Result<JobSpec> r = ParseJobSpec("name: [j]\n", "conf/x.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().substr(0, r.status().message().find('\n')),
            "conf/x.yaml:1: name: expected a job name matching [A-Za-z0-9_.-]+, got a list");
}

TEST_F(JobSpecTest, InferJobsDefaultToTheInferWorkerAndNeedAnInferSection) {
  Write("rows.csv", "id,x\na,1\n");
  auto spec =
      Load("name: j\nkind: infer\ninput: {paths: [rows.csv], format: csv}\ninfer: {key: id}\n");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->kind, "infer");
  ASSERT_EQ(spec->worker.command.size(), 3u);
  EXPECT_TRUE(spec->worker.command[0].ends_with("/baton-infer-worker"));
  EXPECT_EQ(spec->worker.command[1], "--spec");
  EXPECT_EQ(spec->worker.command[2], spec_);
  EXPECT_EQ(spec->worker.env.at("OMP_NUM_THREADS"), "1");  // set before libtorch loads
  auto threads = Load(
      "name: j\nkind: infer\ninput: {paths: [rows.csv]}\nworker: {env: "
      "{MKL_NUM_THREADS: \"4\"}}\ninfer: {intra_op_threads: 3}\n");
  ASSERT_TRUE(threads.ok()) << threads.status().message();
  EXPECT_EQ(threads->worker.env.at("OPENBLAS_NUM_THREADS"), "3");
  EXPECT_EQ(threads->worker.env.at("MKL_NUM_THREADS"), "4");  // the user's value wins
  EXPECT_EQ(
      Problems("name: j\nkind: infer\ninput: {paths: [rows.csv]}\n"),
      std::vector<std::string>{At(2, "infer: missing (kind: infer needs its infer section)")});
  EXPECT_EQ(Problems("name: j\nkind: batch\ninput: {paths: [rows.csv]}\nworker: {command: "
                     "[cat]}\ninfer: {}\n"),
            (std::vector<std::string>{At(2, "kind: expected one of command, infer, got \"batch\""),
                                      At(5, "infer: only with kind: infer")}));
}

TEST(RecordFormatNameTest, NamesMatchTheSpelling) {
  EXPECT_EQ(RecordFormatName(RecordFormat::kLines), "lines");
  EXPECT_EQ(RecordFormatName(RecordFormat::kCsv), "csv");
  EXPECT_EQ(RecordFormatName(RecordFormat::kJsonl), "jsonl");
}

}  // namespace
}  // namespace baton
