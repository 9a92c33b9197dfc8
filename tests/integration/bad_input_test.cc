// Bad input gets a clear error, exit code 2, and starts nothing.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "agent/spawn.h"
#include "baton/v1/baton.grpc.pb.h"
#include "common/files.h"
#include "common/grpc_util.h"
#include "common/secret.h"
#include "job_harness.h"

namespace baton::testing {
namespace {

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/baton-bad-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    std::ofstream(dir_ + "/input.txt") << "a b\nc\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Writes job.yaml and runs `baton run` on it.
  int RunSpec(const std::string& yaml, std::string* out) {
    std::ofstream(dir_ + "/job.yaml") << yaml;
    return RunCommand({BATON_BIN, "run", dir_ + "/job.yaml"}, out);
  }

  std::string Valid(const std::string& extra = "") {
    return "name: bad\ninput:\n  paths: [input.txt]\nworker:\n  command: [" +
           std::string(WORDCOUNT_BIN) + "]\nmaster:\n  state_dir: state\n" + extra;
  }

  std::string dir_;
};

TEST_F(BadInputTest, MalformedYamlNamesFileAndLine) {
  std::string out;
  EXPECT_EQ(RunSpec("name: x\ninput: [unclosed\n", &out), 2);
  EXPECT_NE(out.find("job.yaml:"), std::string::npos) << out;
  EXPECT_NE(out.find("malformed YAML"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/state")) << "nothing may start on bad input";
}

TEST_F(BadInputTest, UnknownKeyNamesTheKeyPathAndLine) {
  std::string out;
  EXPECT_EQ(RunSpec(Valid("timeouts:\n  lease_sec: 5\n"), &out), 2);
  EXPECT_NE(out.find("job.yaml:9: timeouts.lease_sec"), std::string::npos) << out;
}

TEST_F(BadInputTest, MissingInputFileIsNamed) {
  std::string out;
  std::string yaml = Valid();
  yaml.replace(yaml.find("input.txt"), 9, "missing.txt");
  EXPECT_EQ(RunSpec(yaml, &out), 2);
  EXPECT_NE(out.find("missing.txt"), std::string::npos) << out;
}

TEST_F(BadInputTest, EmptyDatasetIsRefused) {
  std::ofstream(dir_ + "/input.txt", std::ios::trunc);
  std::string out;
  EXPECT_EQ(RunSpec(Valid(), &out), 2);
  EXPECT_NE(out.find("empty dataset"), std::string::npos) << out;
}

TEST_F(BadInputTest, UnwritableStateDirIsRefused) {
  std::ofstream(dir_ + "/afile") << "x";
  std::string yaml = Valid();
  yaml.replace(yaml.find("state_dir: state"), 16, "state_dir: afile/state");
  std::string out;
  EXPECT_EQ(RunSpec(yaml, &out), 2);
  EXPECT_NE(out.find("afile/state"), std::string::npos) << out;
}

TEST_F(BadInputTest, RpcWithoutTheJobTokenIsRefused) {
  std::ofstream(dir_ + "/job.yaml") << Valid();
  agent::SpawnRequest req;
  req.argv = {BATON_BIN, "master", "--spec", dir_ + "/job.yaml"};
  req.output_path = dir_ + "/master.log";
  auto pid = agent::SpawnProcess(req);
  ASSERT_TRUE(pid.ok());
  std::string addr;
  for (int i = 0; i < 500 && addr.empty(); ++i) {
    auto a = ReadFile(dir_ + "/state/master.addr");
    if (a.ok()) addr = a->substr(0, a->find('\n'));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_FALSE(addr.empty()) << "master did not start";
  auto token = LoadSecret(dir_ + "/state/token");
  ASSERT_TRUE(token.ok()) << token.status().ToString();
  EXPECT_EQ(
      std::filesystem::status(dir_ + "/state/token").permissions() & std::filesystem::perms::all,
      std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);

  auto stub = v1::JobService::NewStub(MakeChannel(addr));
  auto status_with = [&](const std::string* tok) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (tok) ctx.AddMetadata(kTokenMetadataKey, *tok);
    v1::JobStatus st;
    return stub->GetStatus(&ctx, v1::GetStatusRequest(), &st).error_code();
  };
  EXPECT_EQ(status_with(nullptr), grpc::StatusCode::UNAUTHENTICATED);
  std::string wrong(token->size(), '0');
  EXPECT_EQ(status_with(&wrong), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(status_with(&*token), grpc::StatusCode::OK);
  ::kill(*pid, SIGTERM);
  int st;
  ::waitpid(*pid, &st, 0);
}

}  // namespace
}  // namespace baton::testing
