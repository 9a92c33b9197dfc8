// The meta-ctr example end to end with the real programs: generated multi-task clicks, `baton
// meta prepare` into episode files, the example's model exported, and baton-meta-train on two
// ranks, meta-learned and plain. On held-out tasks (new tasks of the same world) the
// meta-learned initialisation adapted on each task's support rows must score the query rows
// better than the plain model trained on the same rows, whether the plain model is used as is
// or fine-tuned the same way (fixed seeds: the figures are deterministic).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "../comm/spawn.h"

namespace {

using baton::comm::testing::TempDir;

std::string Shell(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  EXPECT_EQ(::pclose(pipe), 0) << command;
  return out;
}

std::map<std::string, double> KeyValues(const std::string& text) {
  std::map<std::string, double> kv;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = text.find('\n', pos);
    const std::string line = text.substr(pos, end - pos);
    const size_t eq = line.find('=');
    if (eq != std::string::npos) kv[line.substr(0, eq)] = std::atof(line.c_str() + eq + 1);
    pos = end == std::string::npos ? text.size() : end + 1;
  }
  return kv;
}

// Two ranks of baton-meta-train; rank 0's figures.
std::map<std::string, double> Train(const TempDir& dir, const std::string& mode) {
  const std::string common = std::string(META_TRAIN_BIN) + " --model " + dir.path() +
                             "/model.pt --train " + dir.path() + "/train.ep --eval " + dir.path() +
                             "/eval.ep --epochs 5 --tasks-per-step 4 --size 2" + " --store " +
                             dir.path() + "/store" + mode + " " + mode;
  std::string rank1;
  std::thread other([&] { rank1 = Shell(common + " --rank 1"); });
  std::string rank0 = Shell(common + " --rank 0");
  other.join();
  return KeyValues(rank0);
}

TEST(MetaExampleTest, MetaLearnedAucBeatsThePlainModelOnHeldOutTasks) {
  TempDir dir;
  const std::string d = dir.path();
  const std::string py = "/usr/bin/python3 " META_EXAMPLE_DIR;
  Shell(py + "/generate_tasks.py " + d + "/train.csv --tasks 600 --seed 1");
  Shell(py + "/generate_tasks.py " + d + "/eval.csv --tasks 150 --first-task 100000 --seed 2");
  for (const char* split : {"train", "eval"}) {
    Shell(std::string(BATON_BIN) + " meta prepare --input " + d + "/" + split + ".csv --out " + d +
          "/" + split + ".ep --task-key task --label label --dense d0,d1,d2,d3 --sparse " +
          "c0,c1,c2,c3 --order-by ts");
  }
  Shell(py + "/export_model.py " + d + "/model.pt --dense 4 --sparse 4 --dim 8 --hidden 32");

  std::map<std::string, double> meta = Train(dir, "");
  std::map<std::string, double> plain = Train(dir, "--plain");
  ASSERT_TRUE(meta.count("auc") && plain.count("auc") && plain.count("auc_no_adapt"));
  EXPECT_EQ(meta["train_tasks"], 600);
  EXPECT_EQ(meta["eval_tasks"], 150);
  EXPECT_EQ(meta["lookups_per_step"], 1);  // one lookup per meta-step
  std::printf("meta auc %.4f; plain auc %.4f as is, %.4f fine-tuned\n", meta["auc"],
              plain["auc_no_adapt"], plain["auc"]);
  EXPECT_GT(meta["auc"], plain["auc_no_adapt"] + 0.01);
  EXPECT_GT(meta["auc"], plain["auc"]);
}

}  // namespace
