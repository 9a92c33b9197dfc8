// baton-meta-worker: the worker program of `kind: meta` jobs (started by agents), and the
// preflight check `baton run` calls before a job starts.
//
//   baton-meta-worker --spec JOB.yaml            train as one rank (needs the BATON_* environment)
//   baton-meta-worker --check --spec JOB.yaml    validate the meta section, model and episodes
//
// A rank is the training runtime's trainer (train/trainer.h) running G-Meta's meta-step through
// meta/meta_job.h: every task exactly once per epoch across kills and re-formations.
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <signal.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include "infer/row_parser.h"
#include "meta/meta_job.h"
#include "meta/meta_spec.h"
#include "sdk/rendezvous.h"
#include "sdk/worker.h"
#include "spec/job_spec.h"
#include "train/trainer.h"
#include "train/worker_session.h"

namespace {

using baton::Result;
using baton::Status;
namespace meta = baton::meta;
namespace train = baton::train;

// Problems with the model, the episode file and the index, as "SPEC:1: key: message" lines.
std::vector<std::string> Check(const meta::MetaSpec& spec, const std::vector<std::string>& inputs) {
  std::vector<std::string> problems;
  auto add = [&](const std::string& key, const std::string& message) {
    problems.push_back(spec.runtime.spec_path + ":1: " + key + ": " + message);
  };
  Result<std::unique_ptr<meta::MetaModel>> model = meta::LoadMetaModel(spec.runtime.model_path);
  if (!model.ok()) add("meta.model", model.status().message());
  Result<meta::EpisodeFile> episodes = meta::EpisodeFile::Open(spec.episodes);
  if (!episodes.ok()) {
    add("meta.episodes", episodes.status().message());
    return problems;
  }
  if (model.ok() && (static_cast<int>(episodes->num_dense()) != (*model)->num_dense() ||
                     static_cast<int>(episodes->num_sparse()) != (*model)->num_sparse())) {
    add("meta.episodes", spec.episodes + " has " + std::to_string(episodes->num_dense()) +
                             " dense and " + std::to_string(episodes->num_sparse()) +
                             " sparse columns; the model takes " +
                             std::to_string((*model)->num_dense()) + " and " +
                             std::to_string((*model)->num_sparse()));
  }
  // Every index line names an episode of the file, with its task.
  for (const std::string& path : inputs) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    if (line != "episode,task") {
      add("input.paths", path + " is not an episode index (its header is not episode,task)");
      continue;
    }
    std::vector<std::string_view> fields;
    std::vector<std::string> storage;
    for (int number = 2; std::getline(in, line); ++number) {
      char* end = nullptr;
      const long long e = std::strtoll(line.c_str(), &end, 10);
      if (!baton::infer::SplitFields(line, ',', &fields, &storage).ok() || fields.size() != 2 ||
          end != fields[0].data() + fields[0].size() || e < 0 ||
          static_cast<size_t>(e) >= episodes->size() ||
          episodes->task_id(static_cast<size_t>(e)) != fields[1]) {
        add("input.paths", path + ":" + std::to_string(number) + ": not an episode of " +
                               spec.episodes + " (an index of another file?)");
        break;
      }
    }
  }
  return problems;
}

template <typename T>
int Run(const baton::JobSpec& job, const meta::MetaSpec& spec, meta::MetaModel& model,
        std::shared_ptr<const meta::EpisodeFile> episodes) {
  auto identity = train::WorkerIdentityOrHint();
  if (!identity.ok()) {
    std::fprintf(stderr, "baton-meta-worker: %s\n", identity.status().message().c_str());
    return train::kExitBadJob;
  }
  auto session = train::StartWorkerSession(*identity, "meta", spec.runtime, job.master.state_dir);
  if (!session.ok()) {
    spdlog::error("{}", session.status().ToString());
    return 1;
  }
  meta::MetaJob<T> job_model(model, std::move(episodes), spec.job);
  session->options.extension = &job_model;
  train::Trainer trainer(spec.runtime, job_model, *session->worker, *session->rendezvous,
                         session->options);
  Status s = trainer.Run();
  spdlog::info(
      "{} embedding lookup rounds for {} steps (rounds without a step, at the end of the "
      "data or before a failed all-reduce, included)",
      job_model.lookups(), trainer.steps());
  return train::WorkerExitCode(s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "baton-meta-worker: G-Meta (MAML for recommendation models) as one rank of a baton job "
      "(kind: meta).\nStarted by baton agents with the BATON_* environment; `--check` validates "
      "a job spec's meta section, model, episode file and index and exits 0 (fine) or 2."};
  std::string spec_path;
  bool check = false;
  app.add_option("--spec", spec_path, "the job spec (YAML)")->required();
  app.add_flag("--check", check, "validate only");
  CLI11_PARSE(app, argc, argv);

  auto job = baton::LoadJobSpec(spec_path);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().message().c_str());
    return train::kExitBadJob;
  }
  auto spec = meta::LoadMetaSpec(job->spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return train::kExitBadJob;
  }
  meta::ConfigureMetaTorch(check ? 1 : spec->runtime.intra_op_threads);
  if (check) {
    std::vector<std::string> problems = Check(*spec, job->input.paths);
    for (const std::string& p : problems) std::fprintf(stderr, "%s\n", p.c_str());
    return problems.empty() ? 0 : train::kExitBadJob;
  }
  auto model = meta::LoadMetaModel(spec->runtime.model_path);
  auto episodes = meta::EpisodeFile::Open(spec->episodes);
  if (!model.ok() || !episodes.ok()) {
    std::fprintf(stderr, "%s\n",
                 (model.ok() ? episodes.status() : model.status()).ToString().c_str());
    return train::kExitBadJob;
  }
  auto shared = std::make_shared<const meta::EpisodeFile>(std::move(*episodes));
  return (*model)->dtype() == baton::comm::DataType::kFloat64
             ? Run<double>(*job, *spec, **model, shared)
             : Run<float>(*job, *spec, **model, shared);
}
