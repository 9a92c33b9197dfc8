// The worker SDK: how a worker program takes part in a baton job.
//
//   auto identity = sdk::WorkerIdentity::FromEnvironment();   // set by the agent
//   auto worker = sdk::Worker::Connect(*identity);
//   while (auto shard = (*worker)->NextShard()) {             // Result<std::unique_ptr<Shard>>
//     if (!*shard) break;                                      // null: the job has no more work
//     (*shard)->ForEachRecord([&](std::string_view line) { ...; return Status::Ok(); });
//     (*shard)->Write(output_bytes);                           // staged, not yet visible
//     (*worker)->Commit(**shard);                              // visible exactly once
//   }
//
// Leases are renewed in the background. Output goes to a staging file named by shard and lease
// token; Commit flushes and fsyncs it and asks the master to commit, and the master promotes it to
// the shard's final name only if this lease still holds. A worker that was paused past its lease
// gets FENCED from Commit and its output is discarded, never mixed into the result.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "common/defaults.h"
#include "common/status.h"

namespace grpc {
class ClientContext;
class Status;
}  // namespace grpc

namespace baton::v1 {
class ShardLease;
}

namespace baton::sdk {

struct WorkerIdentity {
  std::string job_id;
  std::string node_id;
  std::string worker_id;  // "<node_id>/<local_rank>"
  std::string master_address;
  std::string token;
  int32_t node_rank = 0;
  int32_t local_rank = 0;
  int32_t global_rank = 0;
  // Keep retrying an unreachable master this long before giving up (the master may be restarting).
  int64_t master_unreachable_ms = defaults::kMasterUnreachableMs;

  // Reads the BATON_* variables (common/worker_env.h); names the missing one on error.
  static Result<WorkerIdentity> FromEnvironment();
};

struct RecordRange {
  std::string path;
  uint64_t byte_begin = 0;
  uint64_t byte_end = 0;
  uint64_t first_record = 0;
  uint64_t record_count = 0;
};

class Worker;

// One leased shard. Obtained from Worker::NextShard; finished with Commit or Fail.
class Shard {
 public:
  ~Shard();
  uint64_t id() const { return id_; }
  uint64_t token() const { return token_; }
  int32_t epoch() const { return epoch_; }
  int32_t attempt() const { return attempt_; }
  const RecordRange& range() const { return range_; }

  // Calls `fn` with each record (a line without its newline), in order. Stops at the first error.
  // Fails if the file no longer holds the number of records the master expects.
  Status ForEachRecord(const std::function<Status(std::string_view)>& fn);
  // Appends to the shard's staged output (created on first use).
  Status Write(std::string_view data);
  // True once the master has refused to renew this lease: Commit will be FENCED.
  bool lost() const { return lost_->load(); }

 private:
  friend class Worker;
  Shard() = default;
  Status FlushOutput();
  // Creates the staging file if nothing was written, flushes and fsyncs it.
  Status StageOutput();

  uint64_t id_ = 0, token_ = 0;
  int32_t epoch_ = 0, attempt_ = 0;
  RecordRange range_;
  std::string staging_path_;
  int out_fd_ = -1;
  std::string out_buffer_;
  std::shared_ptr<std::atomic<bool>> lost_ = std::make_shared<std::atomic<bool>>(false);
  Worker* worker_ = nullptr;
};

struct WorkerOptions {
  // Progress (records, CPU, RSS) is reported this often. Default 1 s.
  int64_t progress_interval_ms = 1000;
  // Commit asks for the next shard in the same call, so a shard costs one round trip instead of
  // two. The prefetched lease is renewed from the moment it arrives. Default true.
  bool lease_with_commit = true;
};

// Thread-safe: NextShard, Commit and Fail may be called from several threads at once (a
// pipelined worker leases in one stage and commits in another). A Shard is used by one thread at
// a time.
class Worker {
 public:
  ~Worker();
  static Result<std::unique_ptr<Worker>> Connect(const WorkerIdentity& identity,
                                                 WorkerOptions options = {});

  // The next shard; null when the job has no more work. Waits while shards are in flight
  // elsewhere (one of them may come back), and retries while the master is unreachable.
  Result<std::unique_ptr<Shard>> NextShard();
  // Like NextShard without waiting: null with *finished false when every remaining shard is
  // leased elsewhere (one of them may come back), null with *finished true when the job has no
  // more work. For workers in lock-step with others (training), which must not block while a
  // peer waits for them in a collective.
  Result<std::unique_ptr<Shard>> TryNextShard(bool* finished);
  // Flushes and fsyncs the staged output (an empty file if nothing was written: the job's output
  // has a part for every shard), then commits. FENCED: the lease was lost; drop the shard and
  // carry on with the next one. If the output cannot be written (a full disk), the shard is given
  // back with that cause (see Fail) and the error returned.
  Status Commit(Shard& shard);
  // Gives the shard back with a reason (recorded, capped by the master); it will be retried
  // elsewhere unless its retry budget is spent.
  Status Fail(Shard& shard, std::string_view reason);
  // Renews every held lease now, in one call: afterwards Shard::lost() is true for each the master
  // refused (it expired and may be someone else's). For a program that must know its leases hold
  // at a point in time (training, before a checkpoint records its progress in them). Unavailable
  // when the master could not be asked (nothing is marked then). One attempt, `deadline` bound.
  Status ConfirmLeases(std::chrono::milliseconds deadline = std::chrono::milliseconds(2000));

  // Adds to the processed-records counter reported to the master (ForEachRecord counts already).
  void AddRecords(uint64_t n) { records_.fetch_add(n); }
  // Adds to a named counter of this process, reported with the progress and shown by
  // `baton status` under the worker (a worker program's own events: bad records, fallbacks).
  // Commit and Fail report changed counters first, so that what a shard counted is in the status
  // by the time the shard is done, even if the process is stopped before its next report.
  void AddCounter(std::string_view name, uint64_t n = 1);
  // Sets a named current value of this process (a loss, a step time), reported with the progress
  // every WorkerOptions::progress_interval_ms and shown by `baton status` (and its --json and
  // Prometheus metrics, baton_worker_gauge) under the worker; what controller policies read.
  // Names as counters'; a non-finite value is ignored.
  void SetGauge(std::string_view name, double value);
  // Sends the next progress report now (from the background thread; returns at once), for a
  // caller that has just set gauges a policy waits for (a training rank's step times).
  void ReportProgressSoon();
  const WorkerIdentity& identity() const { return identity_; }

 private:
  friend class Shard;
  struct Impl;
  Worker(WorkerIdentity identity, WorkerOptions options);
  void Forget(const Shard& shard);
  std::unique_ptr<Shard> Adopt(const v1::ShardLease& lease);
  Result<std::unique_ptr<Shard>> LeaseOnce(bool* finished, int64_t* retry_after_ms);
  void ReportProgress(std::chrono::milliseconds deadline = std::chrono::milliseconds(1000));
  void ReportCountersIfChanged();
  // The background thread: renews every held lease on its own schedule, reports progress.
  void BackgroundLoop();
  // Renews every held lease in one call (`lock` holds Impl::mu; released during the call). False
  // when the call failed.
  bool RenewHeld(std::unique_lock<std::mutex>& lock, int64_t now,
                 std::chrono::milliseconds deadline);
  // One call to the master with the job token and a deadline, retried while it is unreachable
  // (up to identity().master_unreachable_ms).
  Status CallMaster(const std::function<grpc::Status(grpc::ClientContext*)>& rpc);

  WorkerIdentity identity_;
  WorkerOptions options_;
  std::atomic<uint64_t> records_{0};
  std::unique_ptr<Impl> impl_;
};

}  // namespace baton::sdk
