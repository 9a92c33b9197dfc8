// Graph statistics must equal the counts of the official bookkeeping (shared/data/tea/ref).
#include "tea/graph.h"

#include <gtest/gtest.h>

#include "test_data.h"

namespace baton::tea {
namespace {

using testing::DataDir;
using testing::ReadText;

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

TEST(GraphTest, TestdataStatsEqualReferenceInFaithfulMode) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  Graph g = BuildGraph(*data, /*faithful=*/true);
  EXPECT_EQ(FormatStats(g.stats), Trimmed(ReadText(DataDir("ref/testdata_graph_stats.txt"))));
}

TEST(GraphTest, TestdataDefaultModeKeepsSelfLoopDiagonals) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  Graph faithful = BuildGraph(*data, true);
  Graph def = BuildGraph(*data, false);
  EXPECT_EQ(def.stats.ent_ent_val_sum, 3444);
  GraphStats a = faithful.stats, b = def.stats;
  a.ent_ent_val_sum = b.ent_ent_val_sum = 0;
  EXPECT_EQ(FormatStats(a), FormatStats(b)) << "only ent_ent_val_sum may differ (quirk Q1)";
}

TEST(GraphTest, YagoWiki20kStatsEqualReference) {
  TEA_REQUIRE_DATA("YAGO-WIKI20K");
  auto data = LoadDataset(DataDir("YAGO-WIKI20K"));
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  Graph g = BuildGraph(*data, true);
  EXPECT_EQ(FormatStats(g.stats), Trimmed(ReadText(DataDir("ref/YAGO-WIKI20K_graph_stats.txt"))));
  Graph d = BuildGraph(*data, false);
  EXPECT_EQ(d.stats.ent_ent_val_sum, 2222550);
  // Matrix shapes and values agree with the counts.
  EXPECT_EQ(g.ent_ent.rows(), 39422);
  EXPECT_EQ(g.ent_ent.nonZeros(), g.stats.ent_ent_nnz);
  EXPECT_DOUBLE_EQ(g.ent_ent.sum(), static_cast<double>(g.stats.ent_ent_val_sum));
  EXPECT_EQ(g.rel.tuple_ptr.back(), g.stats.triples_idx_r);
  EXPECT_EQ(g.time.tuple_ptr.back(), g.stats.triples_idx_t);
}

}  // namespace
}  // namespace baton::tea
