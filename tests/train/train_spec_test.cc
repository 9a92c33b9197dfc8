// The `train:` section reader: defaults, every problem with file, line, key and what was expected.
#include "train/train_spec.h"

#include <gtest/gtest.h>

#include <string>

namespace baton::train {
namespace {

const std::string kInput =
    "name: t\nkind: train\ninput: {paths: [rows.csv], format: csv, skip_header: true}\n";

TEST(TrainSpec, DefaultsAndResolvedPaths) {
  auto spec = ParseTrainSpec(kInput +
                                 "train:\n"
                                 "  model: m.pt\n"
                                 "  save: out/trained.pt\n"
                                 "  key: id\n"
                                 "  tensors:\n"
                                 "    - {name: x, columns: [x0..x3]}\n"
                                 "    - {name: y, columns: [y]}\n",
                             "/jobs/a/job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->model_path, "/jobs/a/m.pt");
  EXPECT_EQ(spec->save_path, "/jobs/a/out/trained.pt");
  EXPECT_EQ(spec->global_batch, 256);
  EXPECT_EQ(spec->optimizer.kind, OptimizerKind::kAdam);
  EXPECT_DOUBLE_EQ(spec->optimizer.lr, 1e-3);
  ASSERT_EQ(spec->tensors.size(), 2u);
  EXPECT_EQ(spec->tensors[0].columns, (std::vector<std::string>{"x0", "x1", "x2", "x3"}));
  EXPECT_TRUE(spec->input_has_header);
  EXPECT_EQ(spec->errors_dir, "");
}

TEST(TrainSpec, EveryProblemIsNamedWithItsLine) {
  auto spec = ParseTrainSpec(kInput +
                                 "train:\n"                                // 4
                                 "  key: id\n"                             // 5
                                 "  tensors: [{columns: [x]}]\n"           // 6
                                 "  global_batch: \"64\"\n"                // 7
                                 "  optimizer: {kind: sgd, beta1: 0.5}\n"  // 8
                                 "  schedule: {decay: cosine}\n"           // 9
                                 "  clip_grad_norm: -1\n"                  // 10
                                 "  learning_rate: 0.1\n",                 // 11
                             "job.yaml");
  ASSERT_FALSE(spec.ok());
  const std::string m = spec.status().message();
  EXPECT_NE(m.find("job.yaml:4: train.model: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:4: train.save: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:7: train.global_batch: expected"), std::string::npos) << m;
  EXPECT_NE(m.find("train.optimizer: beta1, beta2 and eps are for adam and adamw"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("job.yaml:9: train.schedule.decay_steps: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:10: train.clip_grad_norm: expected"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:11: train.learning_rate"), std::string::npos) << m;
}

TEST(TrainSpec, CheckpointAndEvalSectionsWithDefaultsAndTheirProblems) {
  const std::string train =
      "train:\n  model: m.pt\n  save: t.pt\n  key: id\n"
      "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n";
  auto spec = ParseTrainSpec(kInput + train + "  eval: {path: holdout.csv}\n", "/jobs/a/job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->checkpoint_every_steps, 50);
  EXPECT_EQ(spec->checkpoint_dir, "") << "the worker fills in <master.state_dir>/checkpoints";
  EXPECT_EQ(spec->eval.path, "/jobs/a/holdout.csv");
  EXPECT_EQ(spec->eval.every_steps, 500);
  EXPECT_EQ(spec->eval.score_method, "");

  auto bad = ParseTrainSpec(kInput + train +                                       // 4-6
                                "  checkpoint: {every_steps: 0, dir: c}\n"         // 7
                                "  eval: {every_steps: 10, label: x, mode: 1}\n",  // 10
                            "job.yaml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  EXPECT_NE(m.find("job.yaml:9: train.checkpoint.every_steps: expected"), std::string::npos) << m;
  EXPECT_NE(m.find("job.yaml:10: train.eval.path: missing"), std::string::npos) << m;
  EXPECT_NE(m.find("train.eval.score_method: score_method and label go together"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("train.eval.mode"), std::string::npos) << m;
  auto unknown_label = ParseTrainSpec(
      kInput + train + "  eval: {path: h.csv, score_method: forward, label: z}\n", "job.yaml");
  ASSERT_FALSE(unknown_label.ok());
  EXPECT_NE(unknown_label.status().message().find("train.eval.label: expected the name of one of "
                                                  "train.tensors"),
            std::string::npos)
      << unknown_label.status().message();
}

TEST(TrainSpec, AllReduceIsAutoUnlessSaidAndOnlyTheThreeModes) {
  const std::string train =
      "train:\n  model: m.pt\n  save: t.pt\n  key: id\n"
      "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n";
  auto spec = ParseTrainSpec(kInput + train, "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->allreduce, AllReduceMode::kAuto);
  spec = ParseTrainSpec(kInput + train + "  allreduce: hierarchical\n", "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->allreduce, AllReduceMode::kHierarchical);
  auto bad = ParseTrainSpec(kInput + train + "  allreduce: hring\n", "job.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "train.allreduce: expected one of auto, flat, hierarchical, got \"hring\""),
            std::string::npos)
      << bad.status().message();
}

// train.sharding: NNN unless said; the strategies that keep the parameters whole, by triple or
// alias; the ones that shard parameters, and unknown names, refused with what is accepted.
TEST(TrainSpec, ShardingIsPlainDataParallelUnlessSaidAndKeepsParametersWhole) {
  const std::string train =
      "train:\n  model: m.pt\n  save: t.pt\n  key: id\n"
      "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n";
  auto spec = ParseTrainSpec(kInput + train, "job.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(paro::StrategyName(spec->sharding), "NNN");
  for (const auto& [text, triple] : std::vector<std::pair<std::string, std::string>>{
           {"zero1", "NNG"}, {"ZeRO2", "NGG"}, {"NIG", "NIG"}, {"nii", "NII"}, {"ddp", "NNN"}}) {
    spec = ParseTrainSpec(kInput + train + "  sharding: " + text + "\n", "job.yaml");
    ASSERT_TRUE(spec.ok()) << text << ": " << spec.status().message();
    EXPECT_EQ(paro::StrategyName(spec->sharding), triple) << text;
  }
  for (const std::string bad : {"GGG", "zero3", "IIG", "NNI", "fsdp"}) {
    auto refused = ParseTrainSpec(kInput + train + "  sharding: " + bad + "\n", "job.yaml");
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(
        refused.status().message().find("train.sharding: expected one of NNN, NNG, NGG, NIG, NII"),
        std::string::npos)
        << refused.status().message();
  }
}

TEST(TrainSpec, StragglerSectionWithDefaultsAndTheirProblems) {
  const std::string train =
      "train:\n  model: m.pt\n  save: t.pt\n  key: id\n"
      "  tensors: [{name: x, columns: [x0..x3]}, {name: y, columns: [y]}]\n"
      "  global_batch: 64\n";
  auto off = ParseTrainSpec(kInput + train, "job.yaml");
  ASSERT_TRUE(off.ok()) << off.status().message();
  EXPECT_FALSE(off->straggler.on());
  auto on = ParseTrainSpec(kInput + train +
                               "  straggler:\n    rules: [adjust_batch, kill_restart]\n"
                               "    inject: [{rank: 1, slowdown: 3, on_s: 2, period_s: 5},\n"
                               "             {node: node-1, slowdown: 2}]\n",
                           "job.yaml");
  ASSERT_TRUE(on.ok()) << on.status().message();
  EXPECT_TRUE(on->straggler.on());
  EXPECT_EQ(on->straggler.window, 4);
  EXPECT_EQ(on->straggler.confirm, 3);
  EXPECT_EQ(on->straggler.report_ms, 100);
  EXPECT_DOUBLE_EQ(on->straggler.threshold, 1.3);
  EXPECT_TRUE(on->straggler.has(StragglerRule::kKillRestart));
  EXPECT_DOUBLE_EQ(on->straggler.restart_margin, 2);
  EXPECT_DOUBLE_EQ(on->straggler.restart_cost_s, 30);
  EXPECT_EQ(on->straggler.restarts_per_hour, 5);
  ASSERT_EQ(on->straggler.inject.size(), 2u);
  EXPECT_DOUBLE_EQ(on->straggler.inject[0].period_s, 5);
  EXPECT_EQ(on->straggler.inject[1].rank, -1);
  EXPECT_EQ(on->straggler.inject[1].node, "node-1");

  auto bad = ParseTrainSpec(kInput + train +                                           // 4-9
                                "  straggler:\n"                                       // 10
                                "    rules: [adjust_batch, profile, kill, profile]\n"  // 11
                                "    threshold: 1\n"                                   // 12
                                "    min_batch: 65\n"                                  // 13
                                "    speeds: [1, -2]\n"                                // 14
                                "    windw: 3\n"                                       // 15
                                "    inject: [{rank: 1}, {rank: 0, slowdown: 2, on_s: 9, "
                                "period_s: 3}, {rank: 0, node: n, slowdown: 2}]\n",  // 16
                            "job.yaml");
  ASSERT_FALSE(bad.ok());
  const std::string m = bad.status().message();
  for (const char* want :
       {"train.straggler.rules: expected adjust_batch, kill_restart or profile, got \"kill\"",
        "train.straggler.rules: expected each rule once, got \"profile\" twice",
        "train.straggler.inject[2].rank: expected exactly one of rank",
        "adjust_batch (non-dedicated clusters) and profile (dedicated ones) both set the split",
        "job.yaml:12: train.straggler.threshold: expected",
        "job.yaml:13: train.straggler.min_batch",
        "job.yaml:14: train.straggler.speeds: expected a list of positive numbers",
        "train.straggler.windw", "did you mean", "train.straggler.inject[0].slowdown: expected",
        "train.straggler.inject[1].on_s: expected 0 < on_s < period_s"}) {
    EXPECT_NE(m.find(want), std::string::npos) << want << " in\n" << m;
  }
}

TEST(TrainSpec, ImagesAreNotATrainingFormatAndTheSectionIsRequired) {
  auto images = ParseTrainSpec(
      "name: t\nkind: train\ninput: {paths: [m.txt], format: images}\n"
      "train: {model: m.pt, save: s.pt, key: id, tensors: [{columns: [x]}]}\n",
      "job.yaml");
  ASSERT_FALSE(images.ok());
  EXPECT_NE(images.status().message().find(
                "input.format: expected one of csv, tsv, jsonl for kind: train"),
            std::string::npos)
      << images.status().message();
  auto missing = ParseTrainSpec(kInput, "job.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("train: missing"), std::string::npos);
}

}  // namespace
}  // namespace baton::train
