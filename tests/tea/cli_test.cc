// `baton tea align` on bad input: exit code 2 and a message naming the file and line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "test_data.h"

namespace baton::tea {
namespace {

namespace fs = std::filesystem;
using testing::DataDir;

struct ProcResult {
  int exit_code = -1;
  std::string output;
};

ProcResult RunBaton(const std::string& args) {
  ProcResult r;
  FILE* p = ::popen((std::string(BATON_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

class TeaCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TEA_REQUIRE_DATA("testdata");
    dir_ = fs::temp_directory_path() /
           ("tea_cli_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& e : fs::directory_iterator(DataDir("testdata"))) {
      fs::copy_file(e.path(), dir_ / e.path().filename());
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(TeaCliTest, MalformedLineExitsTwoNamingFileAndLine) {
  std::ofstream(dir_ / "triples_1", std::ios::app) << "1\t2\tnot_an_id\t0\t0\n";
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 10");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("triples_1:4:"), std::string::npos) << r.output;
}

TEST_F(TeaCliTest, MissingFileExitsTwo) {
  fs::remove(dir_ / "ref_pairs");
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 10");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("ref_pairs"), std::string::npos) << r.output;
}

TEST_F(TeaCliTest, IdOutOfRangeExitsTwo) {
  std::ofstream(dir_ / "sup_pairs", std::ios::app) << "0\t123456\n";
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 10");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("sup_pairs:51:"), std::string::npos) << r.output;
}

TEST_F(TeaCliTest, SeedsNotBelowPairsExitsTwo) {
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 122");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("122 pairs"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace baton::tea
