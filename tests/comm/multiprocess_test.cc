// Collectives across real processes on loopback: every collective against a reference for 1-8
// ranks, HO-Ring against the flat ring, and a rank SIGKILLed in the middle of an allreduce.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "spawn.h"

namespace baton::comm {
namespace {

using testing::Spawn;
using testing::SpawnRanks;
using testing::TempDir;
using testing::WaitAll;

// Generous: this guards against hangs only, on two busy cores; it is never a timing check.
constexpr std::chrono::seconds kHangGuard{150};

std::vector<std::string> Worker(const std::string& mode, const TempDir& dir) {
  return {COMM_TEST_WORKER, "--mode", mode, "--store", dir.path()};
}

class CollectivesTest : public ::testing::TestWithParam<int> {};

TEST_P(CollectivesTest, EveryCollectiveMatchesTheReference) {
  TempDir dir;
  auto codes = WaitAll(SpawnRanks(Worker("collectives", dir), GetParam()), kHangGuard);
  for (size_t r = 0; r < codes.size(); ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;
}

INSTANTIATE_TEST_SUITE_P(Ranks, CollectivesTest, ::testing::Range(1, 9),
                         [](const auto& info) { return std::to_string(info.param) + "ranks"; });

void ExpectHierarchicalEqualsFlat(int nodes, int per_node, const std::string& mode = "hring") {
  TempDir dir;
  auto argv = Worker(mode, dir);
  argv.insert(argv.end(),
              {"--nodes", std::to_string(nodes), "--per-node", std::to_string(per_node)});
  auto codes = WaitAll(SpawnRanks(argv, nodes * per_node), kHangGuard);
  for (size_t r = 0; r < codes.size(); ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;
}

TEST(HierarchicalRingTest, TwoNodesOfTwoEqualsFlatRing) { ExpectHierarchicalEqualsFlat(2, 2); }
TEST(HierarchicalRingTest, TwoNodesOfFourEqualsFlatRing) { ExpectHierarchicalEqualsFlat(2, 4); }
TEST(HierarchicalRingTest, ThreeNodesOfTwoEqualsFlatRing) { ExpectHierarchicalEqualsFlat(3, 2); }

// Every operation of the Collectives interface, called through Collectives& on a ProcessGroup and
// on a HierarchicalRing over it: the same results (and the reference), the same rank and size.
TEST(CollectivesInterfaceTest, FlatAndHierarchicalAgreeThroughTheInterface) {
  ExpectHierarchicalEqualsFlat(2, 2, "interface");
}

// Waits (bounded by kHangGuard) until every rank wrote DIR/ready.RANK, i.e. completed its first
// collective and is looping in the next ones.
void WaitForReadyFiles(const std::string& dir, int size) {
  const auto deadline = std::chrono::steady_clock::now() + kHangGuard;
  for (int r = 0; r < size; ++r) {
    struct stat st;
    const std::string ready = dir + "/ready." + std::to_string(r);
    while (::stat(ready.c_str(), &st) != 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
}

// Spawns `size` ranks running worker `mode`, SIGKILLs rank `victim` once all are ready, and
// expects the victim dead by that signal and every survivor to exit 0 (each worker checks what it
// saw after the kill before exiting).
void KillOneRankAndExpectTheOthersToCope(const std::string& mode, int size, int victim) {
  TempDir dir;
  auto pids = SpawnRanks(Worker(mode, dir), size);
  WaitForReadyFiles(dir.path(), size);
  ASSERT_EQ(::kill(pids[static_cast<size_t>(victim)], SIGKILL), 0);
  auto codes = WaitAll(pids, kHangGuard);
  for (int r = 0; r < size; ++r) {
    EXPECT_EQ(codes[static_cast<size_t>(r)], r == victim ? 128 + SIGKILL : 0) << "rank " << r;
  }
}

TEST(FailureTest, KilledRankFailsTheOthersWhoReformASmallerGroup) {
  KillOneRankAndExpectTheOthersToCope("kill", /*size=*/4, /*victim=*/2);
}

TEST(FailureTest, KilledLocalRankFailsItsSharedMemoryPeersWithoutWaitingForTheTimeout) {
  // Survivors exit 0 only if they saw kUnavailable (the dead pid), not the 60 s deadline.
  KillOneRankAndExpectTheOthersToCope("shm_kill", /*size=*/3, /*victim=*/1);
}

// HO-Ring across two emulated nodes (network namespaces joined by a shaped bridge): the ranks of a
// node talk over its loopback, the nodes over veth links, as on a real two-tier cluster.
TEST(NetemTest, HierarchicalRingAcrossEmulatedNodesEqualsFlatRing) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create network namespaces";
  if (std::system("ip netns list >/dev/null 2>&1") != 0) GTEST_SKIP() << "`ip netns` unavailable";
  TempDir dir;
  // netem.sh runs this once per node; it starts the node's two ranks and fails if either does.
  const std::string node_script =
      "rc=0; pids=; for l in 0 1; do " COMM_TEST_WORKER " --mode hring --store " + dir.path() +
      " --nodes 2 --per-node 2 --size 4 --rank $((BATON_NETEM_NODE * 2 + l)) & pids=\"$pids $!\"; "
      "done; for p in $pids; do wait $p || rc=1; done; exit $rc";
  auto pids = Spawn({NETEM_TOOL, "--nodes", "2", "--rate", "1gbit", "--timeout", "120", "--",
                     "/bin/bash", "-c", node_script});
  auto codes = WaitAll({pids}, kHangGuard);
  EXPECT_EQ(codes[0], 0) << "netem.sh or a rank failed; see the output above";
}

}  // namespace
}  // namespace baton::comm
