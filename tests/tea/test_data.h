// Where the tea datasets live for tests, and what a test does when they are absent.
//
// The folder is BATON_TEA_DATA (environment, at test time) if set, else TEA_DATA_DIR (CMake cache
// variable of the same name, default ../shared/data/tea next to the checkout). A test that needs a
// dataset starts with TEA_REQUIRE_DATA(sub): when the folder is missing it FAILS under CI (CI set
// to anything but "" / "0" / "false", as CI services do), so a CI run without data cannot report
// 100 % passed, and otherwise skips with the path it looked at and how to provide the data.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace baton::tea::testing {

inline std::string DataRoot() {
  const char* env = std::getenv("BATON_TEA_DATA");
  return env && *env ? std::string(env) : std::string(TEA_DATA_DIR);
}

inline std::string DataDir(const std::string& sub) { return DataRoot() + "/" + sub; }

inline bool RunningUnderCi() {
  const char* ci = std::getenv("CI");
  if (!ci) return false;
  const std::string v(ci);
  return !v.empty() && v != "0" && v != "false" && v != "FALSE" && v != "False";
}

inline std::string MissingDataMessage(const std::string& sub) {
  return "tea dataset folder " + DataDir(sub) +
         " is missing. Put the public data (README.md, docs/tea.md \"Data and tests\") at "
         "../shared/data/tea next to the checkout, or point BATON_TEA_DATA (test time) or "
         "-DTEA_DATA_DIR (configure time) at the folder holding YAGO-WIKI20K/ and testdata/.";
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace baton::tea::testing

#define TEA_REQUIRE_DATA(sub)                                                         \
  do {                                                                                \
    if (!std::filesystem::exists(::baton::tea::testing::DataDir(sub))) {              \
      if (::baton::tea::testing::RunningUnderCi()) {                                  \
        FAIL() << "CI is set and " << ::baton::tea::testing::MissingDataMessage(sub); \
      }                                                                               \
      GTEST_SKIP() << ::baton::tea::testing::MissingDataMessage(sub);                 \
    }                                                                                 \
  } while (0)
