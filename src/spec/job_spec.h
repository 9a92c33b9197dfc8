// The job spec: what `baton run JOB.yaml` and `baton master --spec JOB.yaml` read.
//
// Every field documents its default and its trade-off; docs/job-spec.md says the same for users.
// LoadJobSpec validates the whole file before anything starts and reports every problem at once
// as "FILE:LINE: key.path: what was expected" lines. It lives in the spec layer (src/spec/), which
// master, launch and the data plane depend on; every section is read with spec/schema_reader.h.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/defaults.h"
#include "common/status.h"

namespace baton {

// kTsv and kImages (a manifest: one image path a line) are for job kinds that read columns or
// images; the control plane splits every format the same way, by lines.
enum class RecordFormat { kLines, kCsv, kJsonl, kTsv, kImages };

struct InputSpec {
  // Input files (each newline-delimited: one record a line). Relative paths are relative to the
  // spec file's directory. A directory means every regular file directly in it, sorted by name
  // (hidden files skipped). After LoadJobSpec: absolute paths of the files that hold at least one
  // record (after the header, with skip_header), in order; files without records are left out.
  std::vector<std::string> paths;
  RecordFormat format = RecordFormat::kLines;
  // Records (lines) per shard. Smaller shards balance load better and lose less work on a failure;
  // larger ones cost less master traffic. Default 10000.
  int64_t records_per_shard = 10000;
  // Skip the first line of every file (a CSV header). Default false.
  bool skip_header = false;
  // Passes over the data. Each epoch's shards get their own ids. Default 1.
  int32_t epochs = 1;
  // Lease shards in a seeded random order (per epoch) instead of file order. Default false.
  bool shuffle = false;
  uint64_t seed = 0;
};

struct OutputSpec {
  // Where committed shard outputs go: DIR/part-<shard id, 8 digits><suffix>. Empty: the job writes
  // no per-shard output (the master promotes nothing). Relative to the spec file's directory.
  std::string dir;
  std::string suffix;  // e.g. ".tsv"; default empty
};

struct WorkerSpec {
  // The worker program and its arguments. argv[0] is resolved relative to the spec file's directory
  // when it contains a '/', else looked up on PATH. Required unless the job kind gives a default
  // (JobKind::DefaultCommand).
  std::vector<std::string> command;
  std::map<std::string, std::string> env;  // extra environment; default none
  int32_t per_node = 1;  // worker processes per node, 1..kMaxWorkersPerNode (1024); default 1
  // Restarts of one worker before its agent gives up on it. Default 3.
  int32_t restart_budget = defaults::kRestartBudget;
  // First restart delay, doubling; default 500 ms.
  int64_t restart_backoff_ms = defaults::kRestartBackoffMs;
  int64_t restart_backoff_max_ms = defaults::kRestartBackoffMaxMs;  // its cap; default 10 s
  int64_t stop_grace_ms = defaults::kStopGraceMs;  // SIGTERM to SIGKILL on stop; default 5 s
};

struct MasterSpec {
  // Address the master listens on. Default 127.0.0.1: nothing off this host can reach it unless
  // the spec says so.
  std::string host = "127.0.0.1";
  int32_t port = 0;          // 0: pick a free port on first start and keep it across restarts
  int32_t metrics_port = 0;  // Prometheus text metrics on host:metrics_port/metrics; 0: off
  // State directory (SQLite database, token, master address, logs). Relative to the spec file's
  // directory. Default ".baton/<name>".
  std::string state_dir;
};

struct TimeoutSpec {
  // A lease lasts this long unless renewed (workers renew every third of it). A worker paused
  // longer than this loses its shard. Default 30 s.
  int64_t lease_ms = 30000;
  int64_t heartbeat_interval_ms = 1000;  // agent heartbeat period; default 1 s
  // A node whose agent is silent this long is dead: its leases are revoked. Default 10 s.
  int64_t node_dead_ms = 10000;
  // Window over which per-worker records/s is measured (for status and straggler policies).
  int64_t speed_window_ms = 10000;
  // How long agents and workers keep retrying an unreachable master before giving up. Default 120
  // s.
  int64_t master_unreachable_ms = defaults::kMasterUnreachableMs;
  // The master ends the job (exit 4, state kept: running again resumes) once no agent has been
  // alive for this long: since it started, or since its last live node was declared dead. Long
  // enough for agents to be restarted or started late on other machines. 0: wait for ever.
  // Default 10 min.
  int64_t agents_gone_ms = 600000;
};

struct FailureSpec {
  // Failed attempts of one shard (failure, lease expiry, worker or node death) before it goes to
  // the dead-letter list. Default 3.
  int32_t max_shard_retries = 3;
  // Finish as PARTIAL (exit 0 with a warning) instead of FAILED when shards are dead-lettered.
  bool allow_partial = false;
  int32_t max_error_bytes = 1024;  // failure reasons are truncated to this; default 1 KiB
  // `baton run` restarts a dead master on the same state dir at most this many times. Default 5.
  int32_t master_restarts = 5;
};

// How workers that train together form a generation (master/rendezvous.h). Jobs whose workers do
// not join a rendezvous never use it.
struct RendezvousSpec {
  // With fewer than every planned worker joined, a generation forms this long after the first
  // join, with at least min_workers. Default 30 s; 1 worker.
  int64_t timeout_ms = 30000;
  int32_t min_workers = 1;
};

struct JobSpec {
  std::string name;       // job name, [A-Za-z0-9_.-]+; required
  std::string spec_path;  // absolute path of the spec file (filled by LoadJobSpec)
  std::string base_dir;   // its directory; relative paths in the spec are resolved against it
  int32_t nodes = 1;      // agents the local backend starts; default 1
  // Standby agents the local backend starts besides (`baton agent --spare`): they run no worker
  // until a controller policy moves work to them, e.g. off a slow host. Default 0.
  int32_t spare_nodes = 0;
  // What the workers run: the name of a registered job kind (spec/job_kind.h). Default
  // "command": worker.command, any program using the SDK.
  std::string kind = "command";
  InputSpec input;
  OutputSpec output;
  WorkerSpec worker;
  MasterSpec master;
  TimeoutSpec timeouts;
  FailureSpec failure;
  RendezvousSpec rendezvous;
};

// Parses and validates `path`. On success, every path in the result is absolute (master.state_dir
// filled with its default), every input file exists and holds a record, and a worker.command[0]
// containing '/' is an absolute path to an executable. On failure: InvalidArgument whose message
// lists every problem, one per line, as "PATH:LINE: key.path: expected ..., got ..." (a YAML syntax
// error is one "PATH:LINE:COLUMN: malformed YAML: ..." line); NotFound if `path` does not exist.
// The caller exits with code 2. Nothing is created on disk.
Result<JobSpec> LoadJobSpec(const std::string& path);

// Same, from YAML text (for tests); `path` is used in messages and for relative paths.
Result<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& path);

std::string RecordFormatName(RecordFormat f);

}  // namespace baton
