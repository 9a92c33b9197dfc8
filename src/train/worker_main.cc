// baton-train-worker: the worker program of `kind: train` jobs (started by agents), and the
// preflight check `baton run` / `baton validate` call before a job starts.
//
//   baton-train-worker --spec JOB.yaml            train as one rank (needs the BATON_* environment)
//   baton-train-worker --check --spec JOB.yaml    validate the train section, data and model
//   baton-train-worker --plan --spec JOB.yaml     the sharding plan (`baton train plan`,
//                                                 train/plan.h)
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>

#include "infer/row_parser.h"
#include "sdk/rendezvous.h"
#include "sdk/worker.h"
#include "spec/job_spec.h"
#include "train/evaluator.h"
#include "train/model.h"
#include "train/plan.h"
#include "train/train_spec.h"
#include "train/trainer.h"
#include "train/worker_session.h"

namespace {

using baton::Result;
using baton::Status;
namespace infer = baton::infer;
namespace train = baton::train;

// The first `want` good records of `file` as one batch; returns how many there were.
int64_t FirstRows(const train::TrainSpec& spec, const std::string& file, int64_t want,
                  std::vector<infer::HostTensor>* batch) {
  Result<infer::RowParser> parser = infer::RowParser::ForFile(spec, file);
  if (!parser.ok()) return 0;
  *batch = parser->NewBatch(static_cast<size_t>(want));
  std::ifstream in(file);
  std::string line, key;
  if (spec.input_has_header) std::getline(in, line);
  int64_t rows = 0;
  while (rows < want && std::getline(in, line)) {
    if (!infer::IsBlankLine(line) && parser->Append(line, &key, batch).ok()) ++rows;
  }
  return rows;
}

// `baton train plan`: the job's model on one rank's share of a step, then the table.
int Plan(const baton::JobSpec& job, const train::TrainSpec& spec, const train::PlanOptions& o) {
  auto model = train::LoadTrainableModel(spec.model_path, spec.loss_method);
  if (!model.ok()) {
    std::fprintf(stderr, "%s: train.model: %s\n", spec.spec_path.c_str(),
                 model.status().message().c_str());
    return train::kExitBadJob;
  }
  const int nodes = o.nodes > 0 ? o.nodes : job.nodes;
  const int per_node = o.per_node > 0 ? o.per_node : job.worker.per_node;
  const int64_t ranks = std::max(1, nodes * per_node);
  const int64_t want = std::max<int64_t>(1, (spec.global_batch + ranks - 1) / ranks);
  std::vector<infer::HostTensor> batch;
  const int64_t rows =
      job.input.paths.empty() ? 0 : FirstRows(spec, job.input.paths[0], want, &batch);
  if (rows == 0) {
    std::fprintf(stderr, "%s: input: no good record to time a step on\n", spec.spec_path.c_str());
    return train::kExitBadJob;
  }
  Status s =
      train::PrintPlan(spec, job.nodes, job.worker.per_node, **model, batch, rows, o, stdout);
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message().c_str());
    return train::kExitBadJob;
  }
  return 0;
}

// Problems with the data or the model, one "SPEC:LINE: key: message" line each; none when the
// records fit the schema, one forward and backward pass on the first records returns per-sample
// losses, and the held-out split (train.eval) parses and scores.
std::vector<std::string> Check(const train::TrainSpec& spec,
                               const std::vector<std::string>& input_files) {
  std::vector<std::string> problems =
      infer::CheckRecordsFit(spec, spec.spec_path, "train", input_files);
  auto add = [&](const std::string& key, const std::string& message) {
    problems.push_back(spec.spec_path + ":1: " + key + ": " + message);
  };
  auto model = train::LoadTrainableModel(spec.model_path, spec.loss_method);
  if (!model.ok()) {
    add("train.model", model.status().message());
    return problems;
  }
  if ((*model)->input_names().size() != spec.tensors.size()) {
    std::string names;
    for (const std::string& n : (*model)->input_names()) names += (names.empty() ? "" : ", ") + n;
    add("train.tensors", "the model's " + spec.loss_method + "(" + names + ") takes " +
                             std::to_string((*model)->input_names().size()) +
                             " tensor(s), train.tensors lists " +
                             std::to_string(spec.tensors.size()));
    return problems;
  }
  if (!problems.empty() || input_files.empty()) return problems;
  // A dry run on the first records of the first file.
  std::vector<infer::HostTensor> batch;
  if (FirstRows(spec, input_files[0], 4, &batch) == 0) {
    return problems;  // bad records are the errors file's business
  }
  auto loss = (*model)->ForwardBackward(batch);
  if (!loss.ok()) add("train.model", loss.status().message());
  if (!spec.eval.path.empty()) {
    // The held-out split parses, and the score method takes train.tensors and scores them.
    auto evaluator = train::Evaluator::Load(spec, **model);
    if (!evaluator.ok()) {
      add("train.eval", evaluator.status().message());
    } else if (auto r = evaluator->Run(**model); !r.ok()) {
      add("train.eval", r.status().message());
    }
  }
  return problems;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "baton-train-worker: trains a TorchScript model as one rank of a baton job (kind: train).\n"
      "Started by baton agents with the BATON_* environment; `--check` validates a job spec's\n"
      "train section against its input files and model and exits 0 (fine) or 2 (problems)."};
  std::string spec_path;
  bool check = false, plan = false;
  train::PlanOptions plan_options;
  app.add_option("--spec", spec_path, "the job spec (YAML)")->required();
  app.add_flag("--check", check,
               "validate only: schema vs inputs, the model loads and returns per-sample losses");
  app.add_flag("--plan", plan, "print the sharding plan (baton train plan) and exit");
  app.add_option("--nodes", plan_options.nodes, "plan: nodes (default: the spec's)");
  app.add_option("--per-node", plan_options.per_node, "plan: ranks per node (default: the spec's)");
  app.add_option("--intra-gbps", plan_options.intra_gbit_per_s, "plan: Gbit/s inside a node")
      ->capture_default_str();
  app.add_option("--inter-gbps", plan_options.inter_gbit_per_s, "plan: Gbit/s of a node's link")
      ->capture_default_str();
  app.add_option("--intra-latency-us", plan_options.intra_latency_us, "plan: per ring step")
      ->capture_default_str();
  app.add_option("--inter-latency-us", plan_options.inter_latency_us, "plan: per ring step")
      ->capture_default_str();
  app.add_option("--memory-gb", plan_options.memory_gb,
                 "plan: model-state budget per rank (0: none)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto job = baton::LoadJobSpec(spec_path);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().message().c_str());
    return train::kExitBadJob;
  }
  auto spec = train::LoadTrainSpec(job->spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return train::kExitBadJob;
  }
  train::ConfigureTorch(check ? 1 : spec->intra_op_threads, spec->seed);
  if (plan) return Plan(*job, *spec, plan_options);
  if (check) {
    std::vector<std::string> problems = Check(*spec, job->input.paths);
    for (const std::string& p : problems) std::fprintf(stderr, "%s\n", p.c_str());
    return problems.empty() ? 0 : train::kExitBadJob;
  }

  auto identity = train::WorkerIdentityOrHint();
  if (!identity.ok()) {
    std::fprintf(stderr, "baton-train-worker: %s\n", identity.status().message().c_str());
    return train::kExitBadJob;
  }
  auto model = train::LoadTrainableModel(spec->model_path, spec->loss_method);
  if (!model.ok()) {
    spdlog::error("{}", model.status().ToString());
    return train::kExitBadJob;
  }
  auto session = train::StartWorkerSession(*identity, "train", *spec, job->master.state_dir);
  if (!session.ok()) {
    spdlog::error("{}", session.status().ToString());
    return 1;
  }
  train::TrainerOptions& options = session->options;
  std::optional<train::Evaluator> evaluator;
  if (!spec->eval.path.empty()) {
    auto loaded = train::Evaluator::Load(*spec, **model);
    if (!loaded.ok()) {
      spdlog::error("{}", loaded.status().ToString());
      return train::kExitBadJob;
    }
    evaluator = std::move(*loaded);
    options.evaluator = &*evaluator;
  }
  train::Trainer trainer(*spec, **model, *session->worker, *session->rendezvous, options);
  return train::WorkerExitCode(trainer.Run());
}
