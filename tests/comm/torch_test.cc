// The at::Tensor adapter (comm/torch_tensors.h): collectives on tensors across real processes on
// loopback (comm_torch_test_worker, checked against torch's arithmetic), and the checks that turn
// tensors the raw API cannot take into clear kInvalidArgument errors, in process on a 1-rank group.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "comm/file_store.h"
#include "comm/process_group.h"
#include "comm/torch_tensors.h"
#include "spawn.h"

namespace baton::comm {
namespace {

using testing::SpawnRanks;
using testing::TempDir;
using testing::WaitAll;

constexpr std::chrono::seconds kHangGuard{150};  // a hang guard, never a timing check

void ExpectRanksSucceed(int size, int nodes, int per_node) {
  TempDir dir;
  std::vector<std::string> argv = {COMM_TORCH_TEST_WORKER, "--store", dir.path()};
  if (nodes > 1) {
    argv.insert(argv.end(),
                {"--nodes", std::to_string(nodes), "--per-node", std::to_string(per_node)});
  }
  auto codes = WaitAll(SpawnRanks(argv, size), kHangGuard);
  for (size_t r = 0; r < codes.size(); ++r) EXPECT_EQ(codes[r], 0) << "rank " << r;
}

TEST(TorchCollectivesTest, TwoRanksMatchTorchArithmeticForEveryDtype) {
  ExpectRanksSucceed(2, 1, 2);
}

TEST(TorchCollectivesTest, FourRanksMatchTorchArithmeticThroughProcessGroupAndHierarchicalRing) {
  ExpectRanksSucceed(4, 2, 2);
}

// A 1-rank group: the checks run before any communication, so one process shows them all.
class TorchCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = FileStore::Open(dir_.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    GroupOptions o;
    o.prefix = "checks";
    auto pg = ProcessGroup::Create(std::shared_ptr<Store>(std::move(*store)), o);
    ASSERT_TRUE(pg.ok()) << pg.status().ToString();
    group_ = std::move(*pg);
  }

  // The status is kInvalidArgument and its message contains every fragment.
  static void ExpectRejected(const Status& s, std::vector<std::string> fragments) {
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    for (const auto& f : fragments)
      EXPECT_NE(s.message().find(f), std::string::npos) << s.message();
  }

  TempDir dir_;
  std::unique_ptr<ProcessGroup> group_;
};

TEST_F(TorchCheckTest, DtypesMapToDataTypes) {
  EXPECT_EQ(*DataTypeOf(at::kFloat), DataType::kFloat32);
  EXPECT_EQ(*DataTypeOf(at::kDouble), DataType::kFloat64);
  EXPECT_EQ(*DataTypeOf(at::kLong), DataType::kInt64);
  EXPECT_EQ(*DataTypeOf(at::kBFloat16), DataType::kBFloat16);
  EXPECT_FALSE(DataTypeOf(at::kHalf).ok());
  EXPECT_FALSE(DataTypeOf(at::kInt).ok());
}

TEST_F(TorchCheckTest, NonContiguousTensorIsRejected) {
  const at::Tensor t = at::ones({3, 4}).t();
  ExpectRejected(AllReduce(*group_, t, ReduceOp::kSum),
                 {"allreduce", "`tensor`", "not contiguous", "sizes [4, 3]", ".contiguous()"});
}

TEST_F(TorchCheckTest, UnsupportedDtypeIsRejected) {
  ExpectRejected(AllReduce(*group_, at::zeros({4}, at::kByte), ReduceOp::kSum),
                 {"allreduce", "has dtype Byte", "supported"});
  ExpectRejected(Broadcast(*group_, at::zeros({4}, at::kHalf), 0), {"broadcast", "Half"});
}

TEST_F(TorchCheckTest, NonCpuUndefinedAndSparseTensorsAreRejected) {
  // The meta device stands in for CUDA, which this build may lack: not CPU memory either way.
  const at::Tensor meta = at::empty({4}, at::TensorOptions().device(at::kMeta));
  ExpectRejected(AllReduce(*group_, meta, ReduceOp::kSum), {"is on meta", "CPU memory"});
  ExpectRejected(AllReduce(*group_, at::Tensor(), ReduceOp::kSum), {"undefined"});
  ExpectRejected(AllReduce(*group_, at::ones({2, 2}).to_sparse(), ReduceOp::kSum),
                 {"not a dense tensor"});
}

TEST_F(TorchCheckTest, MismatchedSizesDtypesAndOverlapAreRejected) {
  const at::Tensor in = at::ones({4});
  ExpectRejected(AllGather(*group_, in, at::empty({5})),
                 {"all_gather", "`out` has 5 elements", "over 1 ranks needs 4"});
  ExpectRejected(ReduceScatter(*group_, in, at::empty({3}), ReduceOp::kSum),
                 {"reduce_scatter", "`out` has 3 elements", "needs 4"});
  ExpectRejected(AllGather(*group_, in, at::empty({4}, at::kDouble)),
                 {"`out` has dtype float64 but `in` has float32"});
  ExpectRejected(AllGather(*group_, at::ones({8}, at::kBFloat16), at::empty({8}, at::kByte)),
                 {"`out`", "Byte"});
  const at::Tensor both = at::ones({8});
  ExpectRejected(AllGather(*group_, both.narrow(0, 0, 4), both.narrow(0, 2, 4)), {"overlaps"});
}

TEST_F(TorchCheckTest, RejectedCallsLeaveTheGroupUsable) {
  ASSERT_FALSE(AllReduce(*group_, at::ones({3, 4}).t(), ReduceOp::kSum).ok());
  EXPECT_TRUE(group_->health().ok());
  // On one rank the collectives are copies, and avg divides by 1.
  at::Tensor t = at::tensor({1.5, -2.0, 3.0}).to(at::kBFloat16);
  ASSERT_TRUE(AllReduce(*group_, t, ReduceOp::kAvg).ok());
  EXPECT_TRUE(t.equal(at::tensor({1.5, -2.0, 3.0}).to(at::kBFloat16)));
  at::Tensor out = at::empty({1, 3}, at::kBFloat16);
  ASSERT_TRUE(AllGather(*group_, t, out).ok());
  EXPECT_TRUE(out.reshape({-1}).equal(t));
  at::Tensor rs = at::empty({3}, at::kLong);
  ASSERT_TRUE(ReduceScatter(*group_, at::arange(3), rs, ReduceOp::kMax).ok());
  EXPECT_TRUE(rs.equal(at::arange(3)));
}

}  // namespace
}  // namespace baton::comm
