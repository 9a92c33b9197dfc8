#include "train/train_command.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "spec/job_kind.h"

namespace baton::train {
namespace {

// What the worker program's --plan mode takes besides the spec, passed on as given (it checks
// them; the defaults are train/plan.h's).
struct Option {
  const char* name;
  const char* help;
};
constexpr Option kOptions[] = {
    {"--nodes", "nodes of the cluster (default: the spec's nodes)"},
    {"--per-node", "ranks per node (default: the spec's worker.per_node)"},
    {"--intra-gbps", "bandwidth between the ranks of a node, Gbit/s (default 100)"},
    {"--inter-gbps", "bandwidth of a node's link to the others, Gbit/s (default 10)"},
    {"--intra-latency-us", "latency of a ring step inside a node, microseconds (default 5)"},
    {"--inter-latency-us", "latency of a ring step across nodes, microseconds (default 30)"},
    {"--memory-gb", "model-state memory per rank, GB (default 0: no limit)"},
};

// Filled by parsing, read by the callback (both while `app` lives).
struct PlanFlags {
  std::string spec;
  std::vector<std::string> values = std::vector<std::string>(std::size(kOptions));
};

}  // namespace

void AddTrainCommand(CLI::App& app, int& exit_code) {
  auto* train = app.add_subcommand("train", "Tools for kind: train jobs.");
  train->require_subcommand(1);
  auto* plan = train->add_subcommand(
      "plan",
      "Print a kind: train job's sharding plan: for every PaRO-DP strategy the model state per "
      "rank and the predicted step time, from the job's model (a step of it timed here on the "
      "job's first rows) and the cluster you describe, and the fastest train.sharding that fits "
      "(docs/paro.md).");
  static PlanFlags flags;
  plan->add_option("spec", flags.spec, "Job spec (YAML, kind: train)")->required();
  for (size_t i = 0; i < std::size(kOptions); ++i) {
    // Checked here, so that `--nodes abc` is a usage error (exit 2) naming the flag.
    plan->add_option(kOptions[i].name, flags.values[i], kOptions[i].help)->check(CLI::Number);
  }
  plan->callback([&exit_code] {
    const std::string program = SiblingProgram("baton-train-worker");
    std::vector<std::string> argv = {program, "--plan", "--spec", flags.spec};
    for (size_t i = 0; i < std::size(kOptions); ++i) {
      if (flags.values[i].empty()) continue;
      argv.push_back(kOptions[i].name);
      argv.push_back(flags.values[i]);
    }
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    std::fflush(stdout);
    ::execv(program.c_str(), args.data());
    std::fprintf(stderr, "baton train plan: cannot run %s: %s\n", program.c_str(),
                 std::strerror(errno));
    exit_code = 1;
  });
}

}  // namespace baton::train
