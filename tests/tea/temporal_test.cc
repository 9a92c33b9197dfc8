// Temporal similarity against the reference rows in shared/data/tea/ref, and quirk Q2.
#include "tea/temporal.h"

#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "tea/graph.h"
#include "test_data.h"

namespace baton::tea {
namespace {

using testing::DataDir;
using testing::ReadText;

TimeProfileOptions Variant(bool faithful) {
  TimeProfileOptions o;
  o.credit_relation_id = faithful;
  o.skip_time_zero = true;
  return o;
}

TEST(TemporalTest, YagoFirstTwentyRowsEqualReferenceInBothVariants) {
  TEA_REQUIRE_DATA("YAGO-WIKI20K");
  auto data = LoadDataset(DataDir("YAGO-WIKI20K"));
  ASSERT_TRUE(data.ok());
  auto split = SplitPairs(*data, 400);
  ASSERT_TRUE(split.ok());
  const int32_t n = BuildGraph(*data, true).node_size;
  std::istringstream ref(ReadText(DataDir("ref/YAGO-WIKI20K_seed400_simt_first20rows_sparse.txt")));
  std::vector<std::map<int, double>> rows;
  for (std::string line; std::getline(ref, line);) {
    std::istringstream ls(line);
    int row;
    ls >> row;
    ASSERT_EQ(row, static_cast<int>(rows.size()));
    rows.emplace_back();
    for (std::string item; ls >> item;) {
      const size_t colon = item.find(':');
      rows.back()[std::stoi(item.substr(0, colon))] = std::stod(item.substr(colon + 1));
    }
  }
  ASSERT_EQ(rows.size(), 20u);
  EXPECT_TRUE(rows[0].empty());
  EXPECT_NEAR(rows[1].at(1), 0.815534, 1e-9);
  for (bool faithful : {false, true}) {
    TimeProfiles tp(*data, n, Variant(faithful));
    std::vector<int32_t> cands;
    for (const auto& p : split->test) cands.push_back(p.second);
    std::vector<float> sim(cands.size());
    std::vector<int32_t> scratch;
    int64_t nonzero = 0;
    for (int i = 0; i < 20; ++i) {
      tp.DiceMany(split->test[i].first, cands.data(), cands.size(), sim.data(), &scratch);
      for (size_t j = 0; j < cands.size(); ++j) {
        auto it = rows[i].find(static_cast<int>(j));
        const double want = it == rows[i].end() ? 0.0 : it->second;
        ASSERT_NEAR(sim[j], want, 6e-7) << "row " << i << " col " << j << " faithful " << faithful;
        ASSERT_NEAR(tp.Dice(split->test[i].first, cands[j]), want, 6e-7);
        nonzero += sim[j] > 0;
      }
    }
    EXPECT_GT(nonzero, 13000 * 14);  // ~13.2k-14.9k non-zeros in 14 of the 20 rows
  }
}

TEST(TemporalTest, TestdataDenseMatrixEqualsReferenceCsv) {
  TEA_REQUIRE_DATA("testdata");
  auto data = LoadDataset(DataDir("testdata"));
  ASSERT_TRUE(data.ok());
  auto split = SplitPairs(*data, 50);
  ASSERT_TRUE(split.ok());
  const int32_t n = BuildGraph(*data, true).node_size;
  for (bool faithful : {false, true}) {
    TimeProfiles tp(*data, n, Variant(faithful));
    std::istringstream csv(ReadText(DataDir(faithful ? "ref/testdata_simt_seed50_faithful.csv"
                                                     : "ref/testdata_simt_seed50_intended.csv")));
    size_t i = 0;
    for (std::string line; std::getline(csv, line); ++i) {
      std::istringstream ls(line);
      size_t j = 0;
      for (std::string v; std::getline(ls, v, ','); ++j) {
        ASSERT_NEAR(tp.Dice(split->test[i].first, split->test[j].second), std::stod(v), 6e-7);
      }
      EXPECT_EQ(j, split->test.size());
    }
    EXPECT_EQ(i, split->test.size());
  }
}

// Q2: the official code also credits a fact's time to the entity whose id equals the relation id.
TEST(TemporalTest, FaithfulVariantCreditsRelationIdEntity) {
  Dataset d;
  d.facts = {{4, 1, 5, 7, 7, false}, {2, 0, 6, 7, 9, true}, {3, 0, 6, 9, 0, true}};
  TimeProfiles intended(d, 7, Variant(false));
  TimeProfiles faithful(d, 7, Variant(true));
  // Intended: entity 2 holds {7, 9} from its own 5-column fact; entity 3 holds {9} (0 skipped).
  EXPECT_EQ(intended.total(2), 2);
  EXPECT_EQ(intended.total(3), 1);
  EXPECT_EQ(intended.total(4), 1);
  // Faithful: relation 1 gives ids 2 and 3 the time 7 of fact (4,1,5); relation 0 gives ids 0, 1.
  EXPECT_EQ(faithful.total(2), 3);
  EXPECT_EQ(faithful.total(3), 2);
  EXPECT_EQ(faithful.total(0), 3);  // 7, 9 of fact 2 and 9 of fact 3, via relation id 2*0 = 0
  EXPECT_DOUBLE_EQ(intended.Dice(4, 5), 1.0);                  // both hold exactly {7}
  EXPECT_DOUBLE_EQ(intended.Dice(4, 0), 0.0);                  // entity 0 has no facts
  EXPECT_DOUBLE_EQ(intended.Dice(2, 6), 2.0 * 2 / (2 + 3));    // {7,9} vs {7,9,9}
  EXPECT_DOUBLE_EQ(intended.Dice(6, 2), intended.Dice(2, 6));  // symmetric
}

}  // namespace
}  // namespace baton::tea
