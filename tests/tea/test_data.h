// Where the shared tea datasets live, and a skip when they are absent (a checkout without shared/).
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace baton::tea::testing {

inline std::string DataDir(const std::string& sub) { return std::string(TEA_DATA_DIR) + "/" + sub; }

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace baton::tea::testing

#define TEA_REQUIRE_DATA(sub)                                                                     \
  do {                                                                                            \
    if (!std::filesystem::exists(::baton::tea::testing::DataDir(sub))) {                          \
      GTEST_SKIP() << "shared data folder " << ::baton::tea::testing::DataDir(sub)                \
                   << " is missing; tea data tests need ../shared/data/tea next to the checkout"; \
    }                                                                                             \
  } while (0)
