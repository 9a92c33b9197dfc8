// Loading the dataset format, and clear errors on bad input.
#include "tea/dataset.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_data.h"

namespace baton::tea {
namespace {

namespace fs = std::filesystem;
using testing::DataDir;

TEST(DatasetTest, LoadsYagoWiki20kCounts) {
  TEA_REQUIRE_DATA("YAGO-WIKI20K");
  auto d = LoadDataset(DataDir("YAGO-WIKI20K"));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->facts.size(), 93583u + 142568u);
  EXPECT_EQ(d->pairs.size(), 19462u);
  EXPECT_TRUE(d->time_zero_is_unknown);  // time_id maps 0 to -inf
  auto split = SplitPairs(*d, 400);
  ASSERT_TRUE(split.ok());
  EXPECT_EQ(split->seeds.size(), 400u);
  EXPECT_EQ(split->test.size(), 19062u);
}

// A writable copy of testdata in a fresh temp folder, to corrupt one file per test.
class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TEA_REQUIRE_DATA("testdata");
    dir_ = fs::temp_directory_path() /
           ("tea_bad_input_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    for (const auto& e : fs::directory_iterator(DataDir("testdata"))) {
      fs::copy_file(e.path(), dir_ / e.path().filename());
    }
  }
  void TearDown() override { fs::remove_all(dir_); }
  void AppendLine(const std::string& file, const std::string& line) {
    std::ofstream(dir_ / file, std::ios::app) << line << "\n";
  }
  fs::path dir_;
};

TEST_F(BadInputTest, MissingFileIsNotFoundAndNamed) {
  fs::remove(dir_ / "triples_2");
  auto d = LoadDataset(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("triples_2"), std::string::npos) << d.status().message();
}

TEST_F(BadInputTest, MalformedLineNamesFileAndLine) {
  AppendLine("triples_1", "1\tx\t2\t0\t0");  // line 4: testdata's triples_1 has 3 lines
  auto d = LoadDataset(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("triples_1:4:"), std::string::npos) << d.status().message();
}

TEST_F(BadInputTest, WrongColumnCountNamesFileAndLine) {
  AppendLine("triples_1", "1\t2");
  auto d = LoadDataset(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("triples_1:4:"), std::string::npos) << d.status().message();
}

TEST_F(BadInputTest, PairIdOutOfRangeNamesFileAndLine) {
  AppendLine("ref_pairs", "50\t999999");
  auto d = LoadDataset(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("ref_pairs:"), std::string::npos) << d.status().message();
  EXPECT_NE(d.status().message().find("999999"), std::string::npos) << d.status().message();
}

TEST_F(BadInputTest, FactEntityOutOfRangeNamesFileAndLine) {
  AppendLine("triples_2", "144\t8\t777777\t0\t0");
  auto d = LoadDataset(dir_.string());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("triples_2:364:"), std::string::npos) << d.status().message();
}

TEST_F(BadInputTest, SeedsNotBelowPairCountIsRejected) {
  auto d = LoadDataset(dir_.string());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(SplitPairs(*d, 121).ok());
  auto s = SplitPairs(*d, 122);  // testdata has 50 + 72 pairs
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("122 pairs"), std::string::npos) << s.status().message();
  EXPECT_FALSE(SplitPairs(*d, 0).ok());
}

}  // namespace
}  // namespace baton::tea
