// `baton tea align` on bad input: exit code 2 and a message naming the file and line.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <stdlib.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

// Issue 10, item 19: the kernel path is printed, lowered by BATON_TEA_KERNEL, and an unknown one
// is bad input.
TEST_F(TeaCliTest, KernelPathIsPrintedAndCanBeLoweredOrRefused) {
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 50 --rounds 1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("cpu_features="), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(" kernel_source=cpu"), std::string::npos) << r.output;
  // --fp32: the portable int8/bf16 kernels are slow at this width; the choice is what is tested.
  r = RunBaton("tea align --data " + dir_.string() +
               " --seeds 50 --rounds 1 --fp32 --kernel generic");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" kernel=generic kernel_source=option"), std::string::npos) << r.output;
  ::setenv("BATON_TEA_KERNEL", "generic", 1);
  r = RunBaton("tea align --data " + dir_.string() + " --seeds 50 --rounds 1 --fp32");
  ::unsetenv("BATON_TEA_KERNEL");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(" kernel=generic kernel_source=BATON_TEA_KERNEL"), std::string::npos)
      << r.output;
  r = RunBaton("tea align --data " + dir_.string() + " --seeds 50 --kernel avx9000");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'avx9000'"), std::string::npos) << r.output;
}

// Issue 10, item 18: --predictions writes the alignment with ids, names and scores.
TEST_F(TeaCliTest, PredictionsFileHoldsTheBestCandidatesWithNames) {
  const fs::path out = dir_ / "pred.tsv";
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 50 --rounds 2 " +
                          "--predictions " + out.string() + " --predictions-k 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::ifstream in(out);
  std::string line;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u + 72u * 3u);  // comment, header, 72 test sources x 3
  EXPECT_EQ(lines[0].rfind("# baton tea align predictions: round=", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" k=3 sources=72 score=sinkhorn"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1],
            "source_id\tsource_name\trank\tcandidate_id\tcandidate_name\tscore\tpartner_id");
  // The first test pair of testdata (ref_pairs line 1 after 50 seeds) with its names.
  std::istringstream f(lines[2]);
  std::vector<std::string> col;
  for (std::string c; std::getline(f, c, '\t');) col.push_back(c);
  ASSERT_EQ(col.size(), 7u) << lines[2];
  EXPECT_FALSE(col[1].empty());
  EXPECT_EQ(col[2], "1");
  EXPECT_FALSE(col[4].empty());
  EXPECT_NE(col[6], "-1");
}

TEST_F(TeaCliTest, UnmatchedWithoutTestLabelsPredictsEveryFreeEntity) {
  // Keep 50 of the 72 ref_pairs and make all 100 pairs seeds: the other 22 KG1 entities have no
  // known partner, and there are no test labels.
  {
    std::ifstream in(dir_ / "ref_pairs");
    std::string kept, line;
    for (int i = 0; i < 50 && std::getline(in, line); ++i) kept += line + "\n";
    in.close();
    std::ofstream(dir_ / "ref_pairs", std::ios::trunc) << kept;
  }
  const fs::path out = dir_ / "pred.tsv";
  ProcResult r = RunBaton("tea align --data " + dir_.string() + " --seeds 100 --unmatched " +
                          "--rounds 1 --predictions " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("test_pairs=0"), std::string::npos) << r.output;
  std::ifstream in(out);
  std::string line;
  int64_t rows = 0, unknown = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("source_id", 0) == 0) continue;
    ++rows;
    unknown += line.size() > 3 && line.compare(line.size() - 3, 3, "\t-1") == 0;
  }
  EXPECT_GE(rows, 22 * 10);  // every free KG1 entity, 10 candidates each (the default)
  EXPECT_EQ(unknown, rows);  // no partner is known
}

}  // namespace
}  // namespace baton::tea
