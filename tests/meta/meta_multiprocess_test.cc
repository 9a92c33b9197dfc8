// G-Meta's distributed meta-step across real processes on loopback: on 2 and 4 ranks (and 2
// nodes × 2 with the dense all-reduce through HO-Ring), first- and second-order MAML, every
// choice of inner-loop parameters and sparse optimizer, the initialisation after K meta-steps
// equals single-process MAML over the same tasks (the workers check, meta_worker.cc).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "../comm/spawn.h"

namespace {

using baton::comm::testing::SpawnRanks;
using baton::comm::testing::TempDir;
using baton::comm::testing::WaitAll;

// Guards against hangs only; never a timing check.
constexpr std::chrono::seconds kHangGuard{240};

void ExpectMatchesSingleProcess(int ranks, std::vector<std::string> extra,
                                const std::string& dtype = "f64") {
  TempDir dir;
  std::vector<std::string> argv = {META_TEST_WORKER,
                                   "--store",
                                   dir.path() + "/store",
                                   "--model",
                                   std::string(META_FIXTURES) + "/meta_" + dtype + ".pt",
                                   "--dtype",
                                   dtype};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto codes = WaitAll(SpawnRanks(std::move(argv), ranks), kHangGuard);
  for (size_t r = 0; r < codes.size(); ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;
}

TEST(MetaEquivalenceTest, FirstOrderOnTwoAndFourRanksMatchesOneProcess) {
  ExpectMatchesSingleProcess(2, {"--order", "first"});
  ExpectMatchesSingleProcess(4, {"--order", "first"});
}

TEST(MetaEquivalenceTest, SecondOrderOnTwoAndFourRanksMatchesOneProcess) {
  ExpectMatchesSingleProcess(2, {"--order", "second"});
  ExpectMatchesSingleProcess(4, {"--order", "second", "--inner-steps", "2"});
}

TEST(MetaEquivalenceTest, TaskByTaskOnFourRanksMatchesOneProcess) {
  ExpectMatchesSingleProcess(4, {"--order", "second", "--path", "per-task"});
}

TEST(MetaEquivalenceTest, EveryInnerParameterChoiceAndSparseOptimizerMatches) {
  ExpectMatchesSingleProcess(2, {"--adapt", "dense", "--sparse-opt", "adam"});
  ExpectMatchesSingleProcess(2,
                             {"--adapt", "embedding", "--sparse-opt", "sgd", "--order", "second"});
}

TEST(MetaEquivalenceTest, HierarchicalDenseAllReduceOnTwoNodesOfTwoMatches) {
  ExpectMatchesSingleProcess(4, {"--nodes", "2", "--order", "second"});
}

// fp32: the sums' order differs between the runs; 1e-5 relative after 3 meta-steps.
TEST(MetaEquivalenceTest, Float32MatchesWithinItsTolerance) {
  ExpectMatchesSingleProcess(4, {"--order", "second", "--tolerance", "1e-5"}, "f32");
}

// The arithmetic itself, against MAML written independently in plain PyTorch
// (maml_reference.py): one process, two inner steps, first and second order, each choice of the
// parameters the inner loop adapts, the meta-batch in one batched pass and task by task.
TEST(MetaReferenceTest, OneProcessMatchesAnIndependentPyTorchMaml) {
  struct Case {
    const char* order;
    const char* adapt;
    const char* path;
  };
  for (Case c : {Case{"first", "all", "batched"}, Case{"second", "all", "batched"},
                 Case{"second", "dense", "batched"}, Case{"second", "embedding", "batched"},
                 Case{"first", "all", "per-task"}, Case{"second", "all", "per-task"}}) {
    TempDir dir;
    const std::string model = std::string(META_FIXTURES) + "/meta_f64.pt";
    const std::string dump = dir.path() + "/run.json";
    auto codes = WaitAll(SpawnRanks({META_TEST_WORKER, "--store", dir.path() + "/store", "--model",
                                     model, "--dump", dump, "--order", c.order, "--adapt", c.adapt,
                                     "--path", c.path, "--inner-steps", "2"},
                                    1),
                         kHangGuard);
    ASSERT_EQ(codes[0], 0);
    const std::string check = "/usr/bin/python3 " META_REFERENCE " " + model + " " + dump;
    EXPECT_EQ(std::system(check.c_str()), 0)
        << c.order << " order, adapting " << c.adapt << ", " << c.path;
  }
}

}  // namespace
