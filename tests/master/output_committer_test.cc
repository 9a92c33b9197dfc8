#include "master/output_committer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "master/state_store.h"
#include "test_util.h"

namespace baton::master {
namespace {

namespace fs = std::filesystem;

void Touch(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A master that crashed between a durable commit and the promotion of its output, with a fenced
// attempt's file and an in-flight attempt's file left in the staging dir, then restarted.
TEST(OutputCommitter, RecoveryPromotesDurableCommitsAndDeletesAttemptsThatCannotCommit) {
  testing::TempDir dir;
  std::string input = testing::WriteLines(dir.path() + "/input", 30);
  std::string out = dir.path() + "/out";
  OutputCommitter output(out, ".tsv");
  ASSERT_TRUE(output.Prepare().ok());
  Shard committed, in_flight;
  uint64_t stale_token = 0;
  {
    auto store = OpenSqliteStateStore(dir.path() + "/state.db");
    ASSERT_TRUE(store.ok());
    LineFileSplitter splitter({input}, 10, false);
    auto dds = Dds::Open(store->get(), DdsOptions{}, JobMeta{"job", "fp", {input}}, &splitter,
                         ShardLayout{}, 0);
    ASSERT_TRUE(dds.ok());
    committed = (*dds)->Lease("w/0", 0).shard;
    Touch(output.StagingPath(committed.id, committed.token), "committed\n");
    auto c = (*dds)->Commit(committed.id, committed.token, "w/0");
    ASSERT_TRUE(c.ok());
    ASSERT_TRUE((*store)->WaitDurable(c->seq).ok());  // durable, but never promoted: "crash"

    Shard lost = (*dds)->Lease("w/1", 0).shard;
    stale_token = lost.token;
    Touch(output.StagingPath(lost.id, lost.token), "stale\n");
    (void)(*dds)->RevokeWorker("w/1", "exited");

    // The lost shard is leased again (it went to the front of the queue) under a new token.
    LeaseOutcome again = (*dds)->Lease("w/2", 0);
    in_flight = again.shard;
    ASSERT_EQ(in_flight.id, lost.id);
    Touch(output.StagingPath(in_flight.id, in_flight.token), "partial\n");
    ASSERT_TRUE((*store)->WaitDurable(again.seq).ok());
  }
  auto store = OpenSqliteStateStore(dir.path() + "/state.db");
  ASSERT_TRUE(store.ok());
  LineFileSplitter splitter({input}, 10, false);
  auto dds = Dds::Open(store->get(), DdsOptions{}, JobMeta{"job", "fp", {input}}, &splitter,
                       ShardLayout{}, 0);
  ASSERT_TRUE(dds.ok());
  ASSERT_TRUE(output.Recover(**dds).ok());

  EXPECT_EQ(Slurp(output.FinalPath(committed.id)), "committed\n");
  EXPECT_FALSE(fs::exists(output.StagingPath(committed.id, committed.token)));
  // The lost attempt can never commit: deleted. The new attempt of the same shard is still leased
  // to its worker, which may yet commit it: kept. Nothing was promoted for that shard.
  EXPECT_FALSE(fs::exists(output.StagingPath(in_flight.id, stale_token)));
  EXPECT_TRUE(fs::exists(output.StagingPath(in_flight.id, in_flight.token)));
  EXPECT_FALSE(fs::exists(output.FinalPath(in_flight.id)));
}

TEST(OutputCommitter, PromoteIsIdempotentAndDiscardRemovesOnlyTheLoser) {
  testing::TempDir dir;
  OutputCommitter output(dir.path() + "/out", "");
  ASSERT_TRUE(output.Prepare().ok());
  Touch(output.StagingPath(7, 10), "winner\n");
  Touch(output.StagingPath(7, 11), "loser\n");
  ASSERT_TRUE(output.Promote(7, 10).ok());
  EXPECT_TRUE(output.Promote(7, 10).ok());  // a retried commit
  output.Discard(7, 11);
  EXPECT_EQ(Slurp(output.FinalPath(7)), "winner\n");
  EXPECT_FALSE(fs::exists(output.StagingPath(7, 11)));
  EXPECT_EQ(output.CheckStaged(7, 12).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace baton::master
