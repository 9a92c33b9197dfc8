// PaRO-DP without processes: strategy names, the §5 shard layout, the memory column of the
// strategy table, and the cost model's choices in the situations the paper describes.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "train/paro/cost_model.h"
#include "train/paro/strategy.h"

namespace baton::train::paro {
namespace {

TEST(ParoStrategyTest, ParsesTriplesAndAliasesCaseInsensitively) {
  for (Strategy s : SupportedStrategies()) {
    auto parsed = ParseStrategy(StrategyName(s));
    ASSERT_TRUE(parsed.ok()) << StrategyName(s);
    EXPECT_EQ(*parsed, s);
  }
  EXPECT_EQ(StrategyName(*ParseStrategy("nig")), "NIG");
  EXPECT_EQ(StrategyName(*ParseStrategy("zero1")), "NNG");
  EXPECT_EQ(StrategyName(*ParseStrategy("ZeRO3")), "GGG");
  EXPECT_EQ(StrategyName(*ParseStrategy("ddp")), "NNN");
  EXPECT_EQ(StrategyAlias(*ParseStrategy("NGG")), "ZeRO-2");
  EXPECT_EQ(SupportedStrategies().size(), 10u);
}

TEST(ParoStrategyTest, UnsupportedTriplesAreRejectedWithTheList) {
  for (const char* bad : {"GNN", "NNI", "", "NIGG", "XYZ"}) {
    auto r = ParseStrategy(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("NNN, NNG, NGG, GGG, NIG, NII, IIG, IGG, ING, III"),
              std::string::npos)
        << r.status().ToString();
  }
}

// No state is partitioned more finely than the state it feeds: the property every strategy's
// update relies on (the optimizer slice lies inside the rank's parameter and gradient shards).
TEST(ParoStrategyTest, NoStrategyPartitionsParametersOrGradientsFinerThanOptimizerState) {
  for (Strategy s : SupportedStrategies()) {
    EXPECT_LE(static_cast<int>(s.p), static_cast<int>(s.os)) << StrategyName(s);
    EXPECT_LE(static_cast<int>(s.g), static_cast<int>(s.os)) << StrategyName(s);
  }
}

// §5: (i, d) -> d·g + i is a bijection onto 0 … n−1 whose image for fixed d is the intra shard
// d·g … d·g+g−1, and OwnerOfChunk inverts it.
TEST(ParoLayoutTest, ChunkMappingIsABijectionOntoContiguousIntraShards) {
  for (Grid grid :
       {Grid{2, 2}, Grid{3, 4}, Grid{4, 2}, Grid{2, 4}, Grid{3, 2}, Grid{1, 4}, Grid{4, 1}}) {
    std::set<int> image;
    for (int d = 0; d < grid.per_node; ++d) {
      std::set<int> of_d;
      for (int i = 0; i < grid.nodes; ++i) {
        ShardLayout lay(grid, i, d, 1000);
        const int c = lay.ChunkOf(i, d);
        EXPECT_EQ(c, d * grid.nodes + i);
        EXPECT_EQ(lay.OwnerOfChunk(c), i * grid.per_node + d);
        image.insert(c);
        of_d.insert(c);
        // The owned chunk lies inside the rank's intra shard, at offset i chunks.
        EXPECT_EQ(lay.own_chunk_offset(), lay.intra_offset() + static_cast<size_t>(i) * lay.chunk);
      }
      EXPECT_EQ(*of_d.begin(), d * grid.nodes);
      EXPECT_EQ(*of_d.rbegin(), d * grid.nodes + grid.nodes - 1);
      EXPECT_EQ(of_d.size(), static_cast<size_t>(grid.nodes));
    }
    EXPECT_EQ(image.size(), static_cast<size_t>(grid.world()));
    EXPECT_EQ(*image.begin(), 0);
    EXPECT_EQ(*image.rbegin(), grid.world() - 1);
  }
}

TEST(ParoLayoutTest, PaddingGivesEqualChunksAndShardSizesDivideThePaddedBuffer) {
  const Grid grid{3, 2};
  for (size_t size : {size_t{1}, size_t{5}, size_t{6}, size_t{7}, size_t{1001}}) {
    ShardLayout lay(grid, 1, 1, size);
    EXPECT_EQ(lay.chunk, std::max<size_t>(1, (size + 5) / 6));
    EXPECT_EQ(lay.padded(), lay.chunk * 6);
    EXPECT_GE(lay.padded(), size);
    EXPECT_EQ(lay.ShardSize(Granularity::kNone), lay.padded());
    EXPECT_EQ(lay.ShardSize(Granularity::kIntra), lay.padded() / 2);
    EXPECT_EQ(lay.ShardSize(Granularity::kGlobal), lay.chunk);
    EXPECT_EQ(lay.ShardOffset(Granularity::kIntra), lay.padded() / 2);  // local 1
    EXPECT_EQ(lay.ShardOffset(Granularity::kGlobal), lay.chunk * 4);    // chunk 1·3 + 1
  }
}

// The memory column of papers/paro.md §4 with Ψ' = Ψ, 2-byte p/g and K = 12.
TEST(ParoMemoryModelTest, ReproducesTheStrategyTable) {
  const Grid grid{4, 8};  // n = 32, m = 8
  const double psi = 1e9;
  auto total = [&](const char* s) {
    return ModelStateBytes(*ParseStrategy(s), grid, psi, psi, {}).total() / psi;
  };
  EXPECT_DOUBLE_EQ(total("NNN"), 16);
  EXPECT_DOUBLE_EQ(total("NNG"), 4 + 12.0 / 32);
  EXPECT_DOUBLE_EQ(total("NGG"), 2 + 14.0 / 32);
  EXPECT_DOUBLE_EQ(total("GGG"), 16.0 / 32);
  EXPECT_DOUBLE_EQ(total("NIG"), 2 + 2.0 / 8 + 12.0 / 32);
  EXPECT_DOUBLE_EQ(total("NII"), 2 + 14.0 / 8);
  EXPECT_DOUBLE_EQ(total("IIG"), 4.0 / 8 + 12.0 / 32);
  EXPECT_DOUBLE_EQ(total("IGG"), 2.0 / 8 + 14.0 / 32);
  EXPECT_DOUBLE_EQ(total("ING"), 2.0 / 8 + 2 + 12.0 / 32);
  EXPECT_DOUBLE_EQ(total("III"), 16.0 / 8);
  // Partial training: gradients and optimizer state follow Ψ', parameters Ψ.
  const StateBytes partial = ModelStateBytes(*ParseStrategy("IIG"), grid, psi, psi / 16, {});
  EXPECT_DOUBLE_EQ(partial.params, 2 * psi / 8);
  EXPECT_DOUBLE_EQ(partial.grads, 2 * psi / 16 / 8);
  EXPECT_DOUBLE_EQ(partial.optimizer, 12 * psi / 16 / 32);
}

// A 2-node cluster with 10× faster links inside a node than between: the paper's setting.
CostInputs TwoTier(double trainable_fraction) {
  CostInputs in;
  in.grid = {2, 8};
  in.layers = EqualLayers(1e9, 32, 1e9 * trainable_fraction, trainable_fraction < 1 ? 2 : 32);
  in.micro_steps = 4;
  in.compute_s = 0.5;
  in.links = {.intra_bytes_per_s = 100e9,
              .inter_bytes_per_s = 10e9,
              .intra_latency_s = 5e-6,
              .inter_latency_s = 20e-6};
  return in;
}

const Prediction& Find(const std::vector<Prediction>& all, const char* name) {
  for (const Prediction& p : all) {
    if (StrategyName(p.strategy) == name) return p;
  }
  ADD_FAILURE() << name;
  return all.front();
}

TEST(ParoCostModelTest, IntraGroupStrategiesBeatZeroThreeWhenInterNodeLinksAreSlow) {
  const auto all = PredictAll(TwoTier(1.0));
  const Prediction& zero3 = Find(all, "GGG");
  for (const char* s : {"IIG", "IGG", "NIG", "III"}) {
    EXPECT_LT(Find(all, s).step_s, zero3.step_s) << s;
  }
  // ZeRO-3 holds the least; NNN the most.
  for (const Prediction& p : all) {
    EXPECT_GE(p.memory_bytes, zero3.memory_bytes) << StrategyName(p.strategy);
    EXPECT_LE(p.memory_bytes, Find(all, "NNN").memory_bytes) << StrategyName(p.strategy);
  }
}

TEST(ParoCostModelTest, TheChooserPicksTheFastestThatFitsAndNamesTheNeedWhenNothingDoes) {
  CostInputs in = TwoTier(1.0);
  const auto all = PredictAll(in);
  // Unlimited memory: the fastest of all.
  const Prediction unlimited = *Choose(in);
  for (const Prediction& p : all) EXPECT_LE(unlimited.step_s, p.step_s);
  // A budget between ZeRO-3's need and every other's: only ZeRO-3 fits.
  double second = 1e300;
  for (const Prediction& p : all) {
    if (StrategyName(p.strategy) != "GGG") second = std::min(second, p.memory_bytes);
  }
  in.memory_budget_bytes = (Find(all, "GGG").memory_bytes + second) / 2 / 0.9;
  EXPECT_EQ(StrategyName(Choose(in)->strategy), "GGG");
  in.memory_budget_bytes = Find(all, "GGG").memory_bytes / 2;
  auto none = Choose(in);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("GGG"), std::string::npos) << none.status().ToString();
}

// Accumulating A micro-steps before any inter-node traffic (NIG) beats reduce-scattering over
// the world every micro-step (NGG, ZeRO-2), and more so the larger A.
TEST(ParoCostModelTest, AccumulationFavoursStrategiesThatDeferInterNodeTraffic) {
  CostInputs in = TwoTier(1.0);
  double previous_ratio = 0;
  for (int a : {1, 4, 16}) {
    in.micro_steps = a;
    const auto all = PredictAll(in);
    const double ratio = Find(all, "NGG").step_s / Find(all, "NIG").step_s;
    EXPECT_GT(ratio, previous_ratio) << "A=" << a;
    previous_ratio = ratio;
  }
  EXPECT_GT(previous_ratio, 1.0);
}

// PEFT (Ψ'/Ψ = 3/1000): gradients are tiny, so intra-sharded parameters with no gradient traffic
// per micro-step (ING) beat ZeRO-3's world-wide parameter gathers.
TEST(ParoCostModelTest, IngBeatsZeroThreeForParameterEfficientTraining) {
  const auto all = PredictAll(TwoTier(0.003));
  EXPECT_LT(Find(all, "ING").step_s, Find(all, "GGG").step_s);
  EXPECT_LT(Find(all, "ING").memory_bytes, Find(all, "NNN").memory_bytes);
}

// NNN and NNG move the same bytes (an all-reduce is a reduce-scatter plus an all-gather); NNG
// updates 1/n of the parameters and holds less, so it wins when the update costs anything and
// the tie goes to the smaller when it does not.
TEST(ParoCostModelTest, ZeroOneBeatsOrTiesDataParallelAndTiesGoToTheSmaller) {
  CostInputs in = TwoTier(1.0);
  in.links.inter_bytes_per_s = 1e30;  // communication negligible: compute and update remain
  in.links.intra_bytes_per_s = 1e30;
  in.links.intra_latency_s = in.links.inter_latency_s = 0;
  EXPECT_EQ(StrategyName(Choose(in)->strategy), "GGG");  // all equally fast: the smallest
  in.update_s_per_param = 1e-9;
  const auto all = PredictAll(in);
  EXPECT_NEAR(Find(all, "NNN").update_s, 1.0, 1e-9);
  EXPECT_NEAR(Find(all, "NNG").update_s, 1.0 / 16, 1e-9);
  EXPECT_LT(Find(all, "NNG").step_s, Find(all, "NNN").step_s);
}

// A training loop that gathers a layer once per micro-step (forward and backward in one gather)
// pays half the gather time; the list must name every layer.
TEST(ParoCostModelTest, GathersPerMicroStepScaleTheParameterTerm) {
  CostInputs in = TwoTier(1.0);
  const double twice = Find(PredictAll(in), "IIG").param_s;
  in.gathers_per_micro_step.assign(in.layers.size(), 1);
  EXPECT_NEAR(Find(PredictAll(in), "IIG").param_s, twice / 2, twice * 1e-12);
  in.gathers_per_micro_step.pop_back();
  EXPECT_FALSE(Choose(in).ok());
}

TEST(ParoCostModelTest, InvalidInputsAreRejected) {
  CostInputs in = TwoTier(1.0);
  for (LayerShape& layer : in.layers) layer.trainable = false;
  EXPECT_FALSE(Choose(in).ok());
  in.layers.clear();
  EXPECT_FALSE(Choose(in).ok());
  in = TwoTier(1.0);
  in.links.inter_bytes_per_s = 0;
  EXPECT_FALSE(Choose(in).ok());
  in = TwoTier(1.0);
  in.micro_steps = 0;
  EXPECT_FALSE(Choose(in).ok());
}

}  // namespace
}  // namespace baton::train::paro
