#include "master/splitter.h"

#include <gtest/gtest.h>

#include <fstream>

#include "test_util.h"

namespace baton::master {
namespace {

TEST(LineFileSplitter, CutsWholeLinesIntoShardsPerFile) {
  testing::TempDir dir;
  std::string a = testing::WriteLines(dir.path() + "/a", 10);  // "r0\n".."r9\n": 3 bytes each
  std::string b = testing::WriteLines(dir.path() + "/b", 3);
  LineFileSplitter splitter({a, b}, 4, false);
  auto ranges = splitter.Split();
  ASSERT_TRUE(ranges.ok()) << ranges.status().ToString();
  ASSERT_EQ(ranges->size(), 4u);  // a: 4+4+2, b: 3
  EXPECT_EQ((*ranges)[0].byte_begin, 0u);
  EXPECT_EQ((*ranges)[0].byte_end, 12u);
  EXPECT_EQ((*ranges)[1].first_record, 4u);
  EXPECT_EQ((*ranges)[2].record_count, 2u);
  EXPECT_EQ((*ranges)[2].byte_end, 30u);
  EXPECT_EQ((*ranges)[3].file_index, 1u);
  EXPECT_EQ((*ranges)[3].record_count, 3u);
}

TEST(LineFileSplitter, CountsAFinalLineWithoutNewline) {
  testing::TempDir dir;
  std::string p = dir.path() + "/f";
  std::ofstream(p) << "a\nb\nc";
  LineFileSplitter splitter({p}, 2, false);
  auto ranges = splitter.Split();
  ASSERT_TRUE(ranges.ok());
  ASSERT_EQ(ranges->size(), 2u);
  EXPECT_EQ((*ranges)[1].record_count, 1u);
  EXPECT_EQ((*ranges)[1].byte_end, 5u);
}

TEST(LineFileSplitter, SkipsTheHeaderOfEveryFile) {
  testing::TempDir dir;
  std::string p = dir.path() + "/f.csv";
  std::ofstream(p) << "x,y\n1,2\n3,4\n";
  LineFileSplitter splitter({p}, 10, true);
  auto ranges = splitter.Split();
  ASSERT_TRUE(ranges.ok());
  ASSERT_EQ(ranges->size(), 1u);
  EXPECT_EQ((*ranges)[0].byte_begin, 4u);
  EXPECT_EQ((*ranges)[0].record_count, 2u);
}

TEST(LineFileSplitter, MissingFileIsNotFound) {
  LineFileSplitter splitter({"/nonexistent/baton/input"}, 10, false);
  auto ranges = splitter.Split();
  ASSERT_FALSE(ranges.ok());
  EXPECT_EQ(ranges.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ranges.status().message().find("/nonexistent/baton/input"), std::string::npos);
}

}  // namespace
}  // namespace baton::master
