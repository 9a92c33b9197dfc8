// Single-process pieces: block partition, reduction kernels, bf16, FileStore, generations,
// topology.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <thread>

#include "comm/bfloat16.h"
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

uint16_t Bf(float f) { return FloatToBFloat16(f); }
float Bits(uint32_t u) { return std::bit_cast<float>(u); }

TEST(BFloat16Test, IsTwoBytesNamedBfloat16) {
  EXPECT_EQ(ElementSize(DataType::kBFloat16), 2u);
  EXPECT_EQ(DataTypeName(DataType::kBFloat16), "bfloat16");
}

TEST(BFloat16Test, ConversionKeepsTheUpperHalfOfTheFloat) {
  EXPECT_EQ(Bf(1.0f), 0x3f80);
  EXPECT_EQ(Bf(-2.0f), 0xc000);
  EXPECT_EQ(Bf(-0.0f), 0x8000);
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  EXPECT_EQ(BFloat16ToFloat(0x4060), 3.5f);
  EXPECT_EQ(BFloat16ToFloat(0xff80), -std::numeric_limits<float>::infinity());
  EXPECT_EQ(BFloat16ToFloat(0x0001), Bits(0x00010000));  // subnormals survive
}

TEST(BFloat16Test, RoundsToNearestTiesToEven) {
  // 1 + 2^-8 lies halfway between 0x3f80 (1) and 0x3f81 (1 + 2^-7): the even one wins.
  EXPECT_EQ(Bf(Bits(0x3f808000)), 0x3f80);
  // 1 + 3 * 2^-8 lies halfway between 0x3f81 and 0x3f82: again the even one.
  EXPECT_EQ(Bf(Bits(0x3f818000)), 0x3f82);
  // Just above and just below half.
  EXPECT_EQ(Bf(Bits(0x3f808001)), 0x3f81);
  EXPECT_EQ(Bf(Bits(0x3f807fff)), 0x3f80);
  EXPECT_EQ(Bf(Bits(0xbf808001)), 0xbf81);  // negative values round by magnitude
  // The largest float rounds past bf16's largest finite (0x7f7f) to infinity.
  EXPECT_EQ(Bf(Bits(0x7f7fffff)), 0x7f80);
  EXPECT_EQ(Bf(Bits(0x7f7f7fff)), 0x7f7f);
  EXPECT_EQ(Bf(std::numeric_limits<float>::infinity()), 0x7f80);
}

TEST(BFloat16Test, NaNStaysNaNEvenWithItsPayloadInTheDroppedBits) {
  EXPECT_EQ(Bf(Bits(0x7f800001)), 0x7fc0);  // would truncate to infinity
  EXPECT_EQ(Bf(Bits(0xff800001)), 0xffc0);
  EXPECT_EQ(Bf(Bits(0x7fc00000)), 0x7fc0);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(Bf(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(BFloat16Test, SumRoundsEachResultToNearestEven) {
  // 256 + 1 = 257 sits halfway between 256 and 258 (bf16 spacing is 2 there): 256 (even) wins.
  // 258 + 1 = 259 between 258 (0x4381, odd) and 260 (0x4382): 260. 1 + 2^-8: back to 1.
  // 1.0078125 + 2^-8 = 1.01171875, halfway between 0x3f81 and 0x3f82: 0x3f82 = 1.015625.
  std::vector<uint16_t> a = {Bf(256), Bf(258), Bf(1), 0x3f81, Bf(1.5f), Bf(-3)};
  std::vector<uint16_t> b = {Bf(1), Bf(1), Bf(0.00390625f), Bf(0.00390625f), Bf(2.25f), Bf(1)};
  ReduceInto(a.data(), b.data(), a.size(), DataType::kBFloat16, ReduceOp::kSum);
  EXPECT_EQ(a, (std::vector<uint16_t>{Bf(256), Bf(260), Bf(1), 0x3f82, Bf(3.75f), Bf(-2)}));
}

TEST(BFloat16Test, MaxMinAndAverage) {
  std::vector<uint16_t> a = {Bf(1.5f), Bf(-2), Bf(3), Bf(-0.125f)};
  std::vector<uint16_t> b = {Bf(-1), Bf(4), Bf(3), Bf(-0.25f)};
  auto mx = a, mn = a;
  ReduceInto(mx.data(), b.data(), a.size(), DataType::kBFloat16, ReduceOp::kMax);
  ReduceInto(mn.data(), b.data(), a.size(), DataType::kBFloat16, ReduceOp::kMin);
  EXPECT_EQ(mx, (std::vector<uint16_t>{Bf(1.5f), Bf(4), Bf(3), Bf(-0.125f)}));
  EXPECT_EQ(mn, (std::vector<uint16_t>{Bf(-1), Bf(-2), Bf(3), Bf(-0.25f)}));
  // avg of {1, 0, 0} over 3 ranks: 1/3 = 0x3eaaaaab as float, rounded up to 0x3eab
  // (0.333984375); 7/2 = 3.5 is exact; -5/3 = -1.6666666 (0xbfd55555) rounds down to 0xbfd5.
  std::vector<uint16_t> s = {Bf(1), Bf(7), Bf(-5)};
  DivideBy(s.data(), 1, DataType::kBFloat16, 3);
  DivideBy(s.data() + 1, 1, DataType::kBFloat16, 2);
  DivideBy(s.data() + 2, 1, DataType::kBFloat16, 3);
  EXPECT_EQ(s, (std::vector<uint16_t>{0x3eab, 0x4060, 0xbfd5}));
}

TEST(BFloat16Test, VectorisedBlocksAndTheTailAgreeWithOneElementAtATime) {
  // 77 elements: two 32-element blocks and a 13-element tail, over varied bit patterns.
  std::vector<uint16_t> a(77), b(77);
  for (size_t i = 0; i < a.size(); ++i) {
    a[i] = Bf(static_cast<float>(i) * 1.37f - 40.0f);
    b[i] = Bf(static_cast<float>(i * i % 19) * 0.0371f + 0.5f);
  }
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin}) {
    auto got = a;
    ReduceInto(got.data(), b.data(), got.size(), DataType::kBFloat16, op);
    for (size_t i = 0; i < a.size(); ++i) {
      auto want = a[i];
      ReduceInto(&want, &b[i], 1, DataType::kBFloat16, op);
      ASSERT_EQ(got[i], want) << ReduceOpName(op) << " [" << i << "]";
    }
  }
  auto got = a;
  DivideBy(got.data(), got.size(), DataType::kBFloat16, 7);
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(got[i], Bf(BFloat16ToFloat(a[i]) / 7.0f)) << i;
  }
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
