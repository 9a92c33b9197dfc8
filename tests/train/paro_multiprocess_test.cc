// PaRO-DP across real processes on loopback: every strategy against plain data-parallel
// arithmetic on the grids the issue names (2×2, 2×4, 3×2), in fp64 and fp32; a state saved on
// one grid resumed on another; and each strategy's model-state memory against the model.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../comm/spawn.h"

namespace {

using baton::comm::testing::SpawnRanks;
using baton::comm::testing::TempDir;
using baton::comm::testing::WaitAll;

// Guards against hangs only (two busy cores, up to 8 ranks); never a timing check.
constexpr std::chrono::seconds kHangGuard{240};

std::vector<std::string> Worker(const std::string& mode, const TempDir& dir, int nodes,
                                int per_node) {
  return {PARO_TEST_WORKER,
          "--mode",
          mode,
          "--store",
          dir.path() + "/store",
          "--nodes",
          std::to_string(nodes),
          "--per-node",
          std::to_string(per_node)};
}

void ExpectAllRanksPass(std::vector<std::string> argv, int ranks) {
  auto codes = WaitAll(SpawnRanks(std::move(argv), ranks), kHangGuard);
  for (size_t r = 0; r < codes.size(); ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;
}

void ExpectEquivalence(int nodes, int per_node, const std::string& dtype = "f64",
                       const std::string& intra = "ring") {
  TempDir dir;
  auto argv = Worker("equivalence", dir, nodes, per_node);
  argv.insert(argv.end(), {"--dtype", dtype, "--intra", intra});
  ExpectAllRanksPass(argv, nodes * per_node);
}

TEST(ParoEquivalenceTest, EveryStrategyMatchesDataParallelOnTwoNodesOfTwo) {
  ExpectEquivalence(2, 2);
}
TEST(ParoEquivalenceTest, EveryStrategyMatchesDataParallelOnTwoNodesOfFour) {
  ExpectEquivalence(2, 4);
}
TEST(ParoEquivalenceTest, EveryStrategyMatchesDataParallelOnThreeNodesOfTwo) {
  ExpectEquivalence(3, 2, "f64", "direct");  // and the direct-exchange intra-node path
}
// Degenerate grids: one node (INTER has one member) and one rank per node (INTRA has one).
TEST(ParoEquivalenceTest, EveryStrategyMatchesDataParallelOnOneNodeAndOneRankPerNode) {
  ExpectEquivalence(1, 3);
  ExpectEquivalence(3, 1);
}
TEST(ParoEquivalenceTest, EveryStrategyMatchesDataParallelInFloat32) {
  ExpectEquivalence(2, 2, "f32");
}

// Saved by IGG on 2×2, resumed by NIG on 3×2 and by GGG on 2×4: the same parameters as six
// reference steps, the last three summing the new grid's ranks.
TEST(ParoReshardTest, AStateSavedOnOneGridResumesOnAnother) {
  TempDir dir;
  const std::string state = dir.path() + "/state.bin";
  auto save = Worker("reshard", dir, 2, 2);
  save.insert(save.end(), {"--phase", "save", "--strategy", "IGG", "--state", state});
  ExpectAllRanksPass(save, 4);
  struct Target {
    int nodes, per_node;
    const char* strategy;
  };
  for (Target t : {Target{3, 2, "NIG"}, Target{2, 4, "GGG"}}) {
    TempDir run;
    auto load = Worker("reshard", run, t.nodes, t.per_node);
    load.insert(load.end(), {"--phase", "load", "--strategy", t.strategy, "--state", state,
                             "--saved-world", "4"});
    ExpectAllRanksPass(load, t.nodes * t.per_node);
  }
}

// kind: train's ShardedStep: unequal rows, a fresh start, an exported whole state (parameters
// and moments) and its restore under another strategy and grid all match a local reference.
TEST(ParoShardedStepTest, ExportedStateIsWholeAndRestoresOnAnotherGrid) {
  TempDir dir;
  ExpectAllRanksPass(Worker("step", dir, 2, 2), 4);
}

TEST(ParoMemoryTest, EachStrategyHoldsTheModelStateItsFormulaPredicts) {
  TempDir dir;
  ExpectAllRanksPass(Worker("memory", dir, 2, 2), 4);
}

}  // namespace
