// Single-process pieces: block partition, reduction kernels, FileStore, generations, topology.
#include <gtest/gtest.h>

#include <thread>

#include "comm/file_store.h"
#include "comm/generation.h"
#include "comm/reduce.h"
#include "comm/topology.h"
#include "comm/types.h"
#include "spawn.h"

namespace baton::comm {
namespace {

TEST(PartitionTest, FirstBlocksTakeTheRemainder) {
  auto b = Partition(10, 4);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].count, 3u);
  EXPECT_EQ(b[1].count, 3u);
  EXPECT_EQ(b[2].count, 2u);
  EXPECT_EQ(b[3].offset, 8u);
  EXPECT_EQ(b[3].count, 2u);
  auto empty = Partition(0, 3);
  for (const auto& x : empty) EXPECT_EQ(x.count, 0u);
}

TEST(ReduceTest, SumMaxMinAndAverage) {
  std::vector<int64_t> a = {1, -5, 9}, b = {2, 3, -4};
  auto s = a;
  ReduceInto(s.data(), b.data(), 3, DataType::kInt64, ReduceOp::kSum);
  EXPECT_EQ(s, (std::vector<int64_t>{3, -2, 5}));
  auto m = a;
  ReduceInto(m.data(), b.data(), 3, DataType::kInt64, ReduceOp::kMax);
  EXPECT_EQ(m, (std::vector<int64_t>{2, 3, 9}));
  std::vector<double> d = {3, 6};
  DivideBy(d.data(), 2, DataType::kFloat64, 3);
  EXPECT_EQ(d, (std::vector<double>{1, 2}));
}

TEST(FileStoreTest, SetGetAddAndTimeout) {
  testing::TempDir dir;
  auto store = FileStore::Open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  ASSERT_TRUE((*store)->Set("gen0/addr/1", std::string("a\0b", 3)).ok());
  auto v = (*store)->Get("gen0/addr/1", std::chrono::milliseconds(100));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, std::string("a\0b", 3));
  auto missing = (*store)->Get("nope", std::chrono::milliseconds(20));
  EXPECT_EQ(missing.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(*(*store)->Add("n", 5), 5);
  EXPECT_EQ(*(*store)->Add("n", -2), 3);
}

TEST(FileStoreTest, ConcurrentAddsAreAtomic) {
  testing::TempDir dir;
  auto store = FileStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) ASSERT_TRUE((*store)->Add("counter", 1).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(*(*store)->Add("counter", 0), 100);
}

TEST(GenerationTest, RanksFollowMemberIdsNotArrivalOrder) {
  testing::TempDir dir;
  auto store = FileStore::Open(dir.path());
  ASSERT_TRUE(store.ok());
  std::vector<Membership> got(3);
  const std::vector<int64_t> ids = {7, 3, 5};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      auto m = JoinGeneration(**store, "job/gen1", ids[i], 3, std::chrono::seconds(10));
      ASSERT_TRUE(m.ok()) << m.status().ToString();
      got[i] = *m;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got[0].rank, 2);  // id 7
  EXPECT_EQ(got[1].rank, 0);  // id 3
  EXPECT_EQ(got[2].rank, 1);  // id 5
  EXPECT_EQ(got[0].members, (std::vector<int64_t>{3, 5, 7}));
  auto late = JoinGeneration(**store, "job/gen1", 9, 3, std::chrono::milliseconds(10));
  EXPECT_EQ(late.status().code(), StatusCode::kAlreadyExists);
}

TEST(TopologyTest, IntraAndInterGroupsFollowThePaper) {
  // Node ids in any order: ranks 0,2 on host 40; ranks 1,3 on host 17.
  auto t = Topology::FromNodeIds({40, 17, 40, 17});
  EXPECT_EQ(t.num_nodes(), 2);
  EXPECT_TRUE(t.uniform());
  EXPECT_EQ(t.node_ranks(0), (std::vector<int>{0, 2}));
  EXPECT_EQ(t.node_ranks(1), (std::vector<int>{1, 3}));
  EXPECT_EQ(t.inter_ranks(1), (std::vector<int>{2, 3}));
  EXPECT_EQ(t.local_index(3), 1);
  auto u = Topology::Uniform(2, 4);
  EXPECT_EQ(u.inter_ranks(3), (std::vector<int>{3, 7}));
  EXPECT_FALSE(Topology::FromNodeIds({1, 1, 2}).uniform());
  EXPECT_TRUE(Topology::FromNodeIds({1, 1, 2}).inter_ranks(1).empty());
}

}  // namespace
}  // namespace baton::comm
