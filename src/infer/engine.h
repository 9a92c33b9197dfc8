// The infer worker's engine: leases shards through the SDK and runs each through
//
//   readers ──raw batches──▶ preprocessors ──▶ model 0 predictors ──▶ ... ──▶ writers ──▶ commit
//                                               └─(crops/outputs)─▶ model k predictors ─┘
//
// every stage on its own threads, joined by bounded queues (pipelined mode), or all of it in one
// thread per reader, one batch at a time (sequential mode, the baseline of the benchmarks).
//
// Exactly-once output: a shard's rows are gathered in memory, sorted by record, written to the
// shard's staged output and committed only when every record of the shard has been written or
// recorded as an error. A crash loses the staged output, never a committed one; the master
// re-leases the shard. Batches of the first model never mix shards and are cut at fixed record
// offsets, so a re-run of a shard gives the same batches (and, on CPU, the same bytes).
//
// Process-level faults: a forward call running past infer.predict_timeout_ms, or resident memory
// past infer.memory_limit_mb, makes the worker exit (kExitPredictorHung / kExitMemoryLimit); its
// agent restarts it and the master re-leases its shards. Data-level faults: a record that fails to
// parse, decode or predict (a failing batch is retried record by record to find it) goes to the
// shard's errors file, `<output.dir>/_errors/part-<shard>.errors.jsonl`; a shard whose error rate
// exceeds infer.max_error_rate is failed instead of committed.
#pragma once

#include <cstdint>
#include <memory>

#include "common/status.h"
#include "infer/autoscaler.h"
#include "infer/infer_spec.h"

namespace baton::sdk {
class Worker;
}

namespace baton::infer {

struct EngineStats {
  uint64_t shards_committed = 0;
  uint64_t shards_failed = 0;  // error rate exceeded
  uint64_t shards_fenced = 0;
  uint64_t records = 0;  // read
  uint64_t errors = 0;   // bad records
  uint64_t scale_events = 0;
  StageCounts final_counts;
};

class InferEngine {
 public:
  InferEngine(InferSpec spec, sdk::Worker* worker);
  ~InferEngine();
  InferEngine(const InferEngine&) = delete;
  InferEngine& operator=(const InferEngine&) = delete;

  // Loads one instance of every model (so that a broken model fails before any shard is
  // leased), then processes shards until the master has no more. An error means the worker
  // should exit non-zero (its agent restarts it; uncommitted shards go back to the queue).
  Status Run();
  EngineStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::infer
