// baton-infer-worker: the worker program of `kind: infer` jobs (started by agents), and the
// preflight check `baton run` / `baton validate` call before a job starts.
//
//   baton-infer-worker --spec JOB.yaml            run as a worker (needs the BATON_* environment)
//   baton-infer-worker --check --spec JOB.yaml    validate the infer section, data and models
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "infer/engine.h"
#include "infer/infer_spec.h"
#include "infer/model_backend.h"
#include "infer/preflight.h"
#include "sdk/worker.h"
#include "spec/job_spec.h"

int main(int argc, char** argv) {
  CLI::App app{
      "baton-infer-worker: runs TorchScript models over a baton job's shards (kind: infer).\n"
      "Started by baton agents with the BATON_* environment; `--check` validates a job spec's\n"
      "infer section against its input files and models and exits 0 (fine) or 2 (problems)."};
  std::string spec_path;
  bool check = false;
  app.add_option("--spec", spec_path, "the job spec (YAML)")->required();
  app.add_flag("--check", check, "validate only: schema vs inputs, models load and accept it");
  CLI11_PARSE(app, argc, argv);

  auto job = baton::LoadJobSpec(spec_path);
  if (!job.ok()) {
    std::fprintf(stderr, "%s\n", job.status().message().c_str());
    return 2;
  }
  auto spec = baton::infer::LoadInferSpec(job->spec_path);
  if (!spec.ok()) {
    std::fprintf(stderr, "%s\n", spec.status().message().c_str());
    return 2;
  }
  if (check) {
    baton::infer::ConfigureRuntimeThreads(1);
    baton::Status s = baton::infer::Preflight(*spec, job->input.paths);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.message().c_str());
      return 2;
    }
    return 0;
  }

  // The math libraries under libtorch (OpenMP, OpenBLAS, oneDNN) size their thread pools from
  // the environment when they load, and threads the pipeline starts would otherwise get one
  // OpenMP thread per core each. `baton run` sets the variables for infer jobs; when they are
  // missing (a worker started some other way), setting them means starting over: re-exec once.
  if (std::getenv("BATON_INFER_THREADS") == nullptr) {
    const std::string n = std::to_string(spec->intra_op_threads);
    for (const char* var : {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"}) {
      ::setenv(var, n.c_str(), 1);
    }
    ::setenv("BATON_INFER_THREADS", n.c_str(), 1);
    ::execv("/proc/self/exe", argv);
    std::perror("baton-infer-worker: re-exec with thread settings");  // go on without them
  }

  // Forward calls allocate and free large temporaries. With glibc's default dynamic thresholds
  // those go back to the kernel (munmap, trim) after every call and are faulted in again on the
  // next: measured at up to half of a predictor's CPU (docs/benchmarks.md). Keep freed memory
  // below 256 MiB in the heap instead; both settings are needed, either alone is slower.
  ::mallopt(M_MMAP_THRESHOLD, 64 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);

  auto identity = baton::sdk::WorkerIdentity::FromEnvironment();
  if (!identity.ok()) {
    std::fprintf(stderr, "baton-infer-worker: %s (run it through `baton run`, or use --check)\n",
                 identity.status().message().c_str());
    return 2;
  }
  spdlog::set_pattern("[%H:%M:%S.%e] [infer " + identity->worker_id + "] %v");
  auto worker = baton::sdk::Worker::Connect(*identity);
  if (!worker.ok()) {
    spdlog::error("{}", worker.status().ToString());
    return 1;
  }
  baton::infer::InferEngine engine(std::move(*spec), worker->get());
  baton::Status s = engine.Run();
  auto stats = engine.stats();
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  spdlog::info(
      "done: {} shard(s) committed, {} failed, {} fenced; {} record(s), {} bad; {} "
      "autoscale change(s)",
      stats.shards_committed, stats.shards_failed, stats.shards_fenced, stats.records, stats.errors,
      stats.scale_events);
  return 0;
}
