// The meta-ctr example end to end with the real programs: generated multi-task clicks, `baton
// meta prepare` into episode files, the example's model exported, and baton-meta-train on two
// ranks, meta-learned and plain. On held-out tasks (new tasks of the same world) the
// meta-learned initialisation adapted on each task's support rows must score the query rows
// better than the plain model trained on the same rows, whether the plain model is used as is
// or fine-tuned the same way (fixed seeds: the figures are deterministic).
#include <gtest/gtest.h>
#include <sys/wait.h>

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

std::string ReadFile(const std::string& path) {
  std::string out;
  FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  std::fclose(f);
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

// What a user gets wrong, answered before any training: exit 2 for a bad flag, 1 with the file
// and the mismatch named for an episode file that does not fit the model or a missing model.
TEST(MetaTrainProgramTest, BadInputsAreClearErrors) {
  TempDir dir;
  const std::string d = dir.path();
  Shell("/usr/bin/python3 " META_EXAMPLE_DIR "/generate_tasks.py " + d + "/rows.csv --tasks 5");
  Shell(std::string(BATON_BIN) + " meta prepare --input " + d + "/rows.csv --out " + d +
        "/rows.ep --task-key task --label label --dense d0,d1,d2,d3 --sparse c0,c1,c2,c3");
  auto run = [&](const std::string& args, std::string* err) {
    const std::string command = std::string(META_TRAIN_BIN) + " " + args + " 2>" + d + "/err";
    const int status = std::system(command.c_str());
    *err = ReadFile(d + "/err");
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  std::string err;
  // The fixture model takes 3 dense and 3 sparse columns; the file has 4 and 4.
  const std::string model = std::string(META_FIXTURES) + "/meta_f32.pt";
  EXPECT_EQ(run("--model " + model + " --train " + d + "/rows.ep", &err), 1);
  EXPECT_NE(err.find(d + "/rows.ep has 4 dense and 4 sparse columns"), std::string::npos) << err;
  EXPECT_NE(err.find("takes 3 and 3"), std::string::npos) << err;
  EXPECT_EQ(run("--model " + d + "/none.pt --train " + d + "/rows.ep", &err), 1);
  EXPECT_NE(err.find("does not exist"), std::string::npos) << err;
  EXPECT_EQ(run("--model " + model + " --train " + d + "/rows.ep --rank 2 --size 2", &err), 2);
  EXPECT_NE(err.find("--rank must be below --size"), std::string::npos) << err;
  EXPECT_EQ(run("--model " + model + " --train " + d + "/rows.ep --order third", &err), 2);
  EXPECT_EQ(run("--train " + d + "/rows.ep", &err), 2);  // --model is required
  EXPECT_NE(err.find("--model"), std::string::npos) << err;
}

// Two ranks started with different options would deal different episodes (and could hang in a
// collective): both refuse, naming the cause.
TEST(MetaTrainProgramTest, RanksStartedDifferentlyBothRefuse) {
  TempDir dir;
  const std::string d = dir.path();
  Shell("/usr/bin/python3 " META_EXAMPLE_DIR "/generate_tasks.py " + d + "/rows.csv --tasks 5");
  Shell(std::string(BATON_BIN) + " meta prepare --input " + d + "/rows.csv --out " + d +
        "/rows.ep --task-key task --label label --dense d0,d1,d2,d3 --sparse c0,c1,c2,c3");
  Shell("/usr/bin/python3 " META_EXAMPLE_DIR "/export_model.py " + d + "/model.pt");
  auto rank = [&](int r, int seed) {
    const std::string command = std::string(META_TRAIN_BIN) + " --model " + d + "/model.pt" +
                                " --train " + d + "/rows.ep --size 2 --store " + d +
                                "/store --rank " + std::to_string(r) + " --seed " +
                                std::to_string(seed) + " 2>" + d + "/err" + std::to_string(r);
    const int status = std::system(command.c_str());
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  };
  int code1 = 0;
  std::thread other([&] { code1 = rank(1, 2); });
  const int code0 = rank(0, 1);
  other.join();
  EXPECT_EQ(code0, 1);
  EXPECT_EQ(code1, 1);
  for (int r = 0; r < 2; ++r) {
    const std::string err = ReadFile(d + "/err" + std::to_string(r));
    EXPECT_NE(err.find("started with different options"), std::string::npos) << err;
  }
}

}  // namespace
