// G-Meta's torch-free pieces: the meta section of a job spec, and the embedding table's export
// and import (what kind: meta snapshots carry) across world sizes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "meta/meta_spec.h"
#include "meta/sharded_embedding.h"

namespace baton::meta {
namespace {

constexpr char kSpec[] = R"(name: m
kind: meta
input: {paths: [index.csv], format: csv, skip_header: true}
meta:
  model: model.pt
  episodes: train.ep
  save: out/model.pt
  tasks_per_step: 12
  order: second
  adapt: dense
  outer_lr: 0.01
  sparse_optimizer: adam
  checkpoint: {every_steps: 7}
)";

TEST(MetaSpec, ReadsTheSectionIntoTheRuntimesSpec) {
  auto spec = ParseMetaSpec(kSpec, "/jobs/m.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->episodes, "/jobs/train.ep");
  EXPECT_EQ(spec->runtime.model_path, "/jobs/model.pt");
  EXPECT_EQ(spec->runtime.save_path, "/jobs/out/model.pt");
  EXPECT_EQ(spec->runtime.global_batch, 12);
  EXPECT_EQ(spec->runtime.optimizer.lr, 0.01);
  EXPECT_EQ(spec->runtime.checkpoint_every_steps, 7);
  EXPECT_TRUE(spec->job.maml.second_order);
  EXPECT_EQ(spec->job.maml.adapt, InnerParams::kDense);
  EXPECT_EQ(spec->job.sparse.kind, SparseOptimizerKind::kAdam);
  ASSERT_EQ(spec->runtime.tensors.size(), 1u);  // one record per task: its episode number
  EXPECT_EQ(spec->runtime.tensors[0].columns, std::vector<std::string>{"episode"});
}

TEST(MetaSpec, EveryProblemIsNamedWithItsLine) {
  const std::string bad = R"(name: m
kind: meta
input: {paths: [index.csv], format: csv}
meta:
  episodes: train.ep
  save: out/model.pt
  order: third
  sparse_optimizer: rmsprop
  tasks_per_step: 0
  inner_stepz: 2
)";
  auto spec = ParseMetaSpec(bad, "/jobs/m.yaml");
  ASSERT_FALSE(spec.ok());
  const std::string m = spec.status().message();
  for (const char* expected :
       {"/jobs/m.yaml:3: input: expected the index of an episode file",
        "/jobs/m.yaml:4: meta.model: expected the TorchScript meta model",
        "/jobs/m.yaml:7: meta.order: expected first or second",
        "/jobs/m.yaml:8: meta.sparse_optimizer: expected sgd, adagrad or adam",
        "/jobs/m.yaml:9: meta.tasks_per_step", "/jobs/m.yaml:10: meta.inner_stepz"}) {
    EXPECT_NE(m.find(expected), std::string::npos) << expected << " not in\n" << m;
  }
}

// Rows trained on 2 ranks, exported and imported on 3 (and on 1): each rank gets exactly the rows
// it owns with their values and optimizer state, so the next update matches a table that never
// moved.
TEST(EmbeddingShard, ExportAndImportMoveRowsAndStateToAnyWorldSize) {
  for (SparseOptimizerKind kind :
       {SparseOptimizerKind::kSgd, SparseOptimizerKind::kAdagrad, SparseOptimizerKind::kAdam}) {
    EmbeddingShard<double>::Options o;
    o.dim = 3;
    o.optimizer.kind = kind;
    std::vector<int64_t> ids;
    for (int64_t i = 0; i < 40; ++i) ids.push_back(i * 7919 + 3);
    std::vector<double> grads(ids.size() * 3);
    for (size_t k = 0; k < grads.size(); ++k) grads[k] = 0.01 * static_cast<double>(k % 17) - 0.05;
    // The reference: one table, two updates.
    EmbeddingShard<double> whole(o);
    ASSERT_TRUE(whole.Apply(ids.data(), ids.size(), grads.data(), 1.0).ok());
    ASSERT_TRUE(whole.Apply(ids.data(), ids.size(), grads.data(), 0.5).ok());
    // Two ranks take the first update, export; three ranks import and take the second.
    std::string snapshot;
    for (int r = 0; r < 2; ++r) {
      EmbeddingShard<double>::Options ro = o;
      ro.rank = r;
      ro.world = 2;
      EmbeddingShard<double> part(ro);
      std::vector<int64_t> mine;
      std::vector<double> g;
      for (size_t k = 0; k < ids.size(); ++k) {
        if (OwnerOf(ids[k], 2) != r) continue;
        mine.push_back(ids[k]);
        g.insert(g.end(), grads.begin() + 3 * k, grads.begin() + 3 * k + 3);
      }
      ASSERT_TRUE(part.Apply(mine.data(), mine.size(), g.data(), 1.0).ok());
      part.Export(&snapshot);
    }
    size_t held = 0;
    for (int r = 0; r < 3; ++r) {
      EmbeddingShard<double>::Options ro = o;
      ro.rank = r;
      ro.world = 3;
      EmbeddingShard<double> part(ro);
      ASSERT_TRUE(part.Import(snapshot).ok());
      held += part.rows();
      std::vector<int64_t> mine;
      std::vector<double> g;
      for (size_t k = 0; k < ids.size(); ++k) {
        if (OwnerOf(ids[k], 3) != r) continue;
        mine.push_back(ids[k]);
        g.insert(g.end(), grads.begin() + 3 * k, grads.begin() + 3 * k + 3);
      }
      EXPECT_EQ(part.rows(), mine.size());
      ASSERT_TRUE(part.Apply(mine.data(), mine.size(), g.data(), 0.5).ok());
      for (int64_t id : mine) {
        for (int e = 0; e < 3; ++e) EXPECT_DOUBLE_EQ(part.Find(id)[e], whole.Find(id)[e]) << id;
      }
    }
    EXPECT_EQ(held, ids.size());
    // A table of another dimension or optimizer is refused, and so are cut bytes.
    EmbeddingShard<double>::Options other = o;
    other.dim = 4;
    EXPECT_FALSE(EmbeddingShard<double>(other).Import(snapshot).ok());
    EXPECT_FALSE(EmbeddingShard<double>(o).Import(snapshot.substr(0, snapshot.size() - 5)).ok());
  }
}

}  // namespace
}  // namespace baton::meta
