// Issue 10, item 20: a data test must not pass as "skipped" in CI when the dataset folder is
// missing. This binary re-runs one of its own data tests as a child process with BATON_TEA_DATA
// pointing at a folder that does not exist, once with CI=true and once without CI.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdio>
#include <string>

namespace baton::tea {
namespace {

struct Child {
  int exit_code = -1;
  std::string output;
};

Child RunSelf(const std::string& env, const std::string& filter) {
  std::array<char, PATH_MAX> self{};
  const ssize_t n = ::readlink("/proc/self/exe", self.data(), self.size() - 1);
  Child c;
  if (n <= 0) return c;
  const std::string cmd = "env -u CI " + env + " '" + std::string(self.data(), n) +
                          "' --gtest_filter=" + filter + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return c;
  std::array<char, 4096> buf;
  for (size_t got; (got = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    c.output.append(buf.data(), got);
  const int status = ::pclose(p);
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

constexpr const char* kMissing = "/nonexistent/baton-tea-data";
constexpr const char* kDataTest = "AlignTest.SameSeedSameMetricsOnTestdata";

TEST(DataGateTest, MissingDataFailsUnderCi) {
  const Child c = RunSelf(std::string("CI=true BATON_TEA_DATA=") + kMissing, kDataTest);
  EXPECT_EQ(c.exit_code, 1) << c.output;
  EXPECT_NE(c.output.find("[  FAILED  ] " + std::string(kDataTest)), std::string::npos) << c.output;
  EXPECT_NE(c.output.find(std::string(kMissing) + "/testdata is missing"), std::string::npos)
      << c.output;
}

TEST(DataGateTest, MissingDataSkipsWithReasonOutsideCi) {
  const Child c = RunSelf(std::string("BATON_TEA_DATA=") + kMissing, kDataTest);
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("[  SKIPPED ] " + std::string(kDataTest)), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("BATON_TEA_DATA"), std::string::npos) << c.output;  // how to fix it
}

TEST(DataGateTest, CiFalseCountsAsNotCi) {
  const Child c = RunSelf(std::string("CI=false BATON_TEA_DATA=") + kMissing, kDataTest);
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("[  SKIPPED ]"), std::string::npos) << c.output;
}

}  // namespace
}  // namespace baton::tea
