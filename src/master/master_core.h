// Internal to the master: the state every RPC handler and the monitor share, and the handlers'
// logic with gRPC types at the edges only. Not part of the public surface (see master.h).
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "baton/v1/baton.pb.h"
#include "common/status.h"
#include "master/controller.h"
#include "master/dds.h"
#include "master/metrics.h"
#include "master/output_committer.h"
#include "master/policy_registry.h"
#include "master/registry.h"
#include "master/rendezvous_host.h"
#include "master/run_clock.h"
#include "master/state_store.h"
#include "spec/job_spec.h"

namespace baton::master {

// What a handler must wait for before it answers: its transitions durable (seq), then optional
// follow-up work (promoting a committed output). Handlers never block on the store themselves.
// Job-level values in the state store (StateStore::AppendMeta).
inline constexpr const char* kWorkersPerNodeMetaKey = "workers_per_node";
// Worker counts set for single nodes (Registry::NodeWorkers), as "node=count,node=count".
inline constexpr const char* kNodeWorkersMetaKey = "node_workers";

struct Deferred {
  uint64_t seq = 0;
  std::function<Status()> then;
};

class MasterCore final : public PolicyHost {
 public:
  // `clock` is the one `dds` was opened with; `restored` is what earlier lives of this master left
  // in the store (see StateStore::LoadMeta and LoadNodeRanks).
  struct Restored {
    std::map<std::string, int32_t> node_ranks;
    int64_t active_ms = 0;  // running time of the job before this master started
  };
  MasterCore(JobSpec spec, std::string token, std::string job_id, std::unique_ptr<StateStore> store,
             std::unique_ptr<Dds> dds, std::unique_ptr<MetricsExporter> metrics,
             std::unique_ptr<RunClock> clock, Restored restored);

  const std::string& token() const { return token_; }
  const JobSpec& spec() const { return spec_; }
  Dds& dds() { return *dds_; }
  OutputCommitter& output() { return output_; }
  // Where policies plug in (controller.h); add them before the monitor starts. None by default.
  Controller& controller() { return controller_; }

  // Node service.
  // Calls `finish` with the handler's final status: at once if nothing must become durable, else
  // from whichever thread commits `deferred.seq` (after running `deferred.then`).
  void Complete(Status status, Deferred deferred, std::function<void(const Status&)> finish);

  // Handlers taking a Deferred answer only through Complete().
  Status RegisterNode(const v1::RegisterNodeRequest& req, v1::RegisterNodeReply* reply,
                      Deferred* d);
  Status Heartbeat(const v1::HeartbeatRequest& req, v1::HeartbeatReply* reply);
  Status ReportExit(const v1::ReportExitRequest& req, Deferred* d);
  // Shard service.
  Status LeaseShard(const v1::LeaseShardRequest& req, v1::LeaseShardReply* reply, Deferred* d);
  Status RenewLeases(const v1::RenewLeasesRequest& req, v1::RenewLeasesReply* reply);
  Status CommitShard(const v1::CommitShardRequest& req, v1::CommitShardReply* reply, Deferred* d);
  Status FailShard(const v1::FailShardRequest& req, v1::FailShardReply* reply, Deferred* d);
  // Job service.
  Status ReportProgress(const v1::ReportProgressRequest& req);
  void GetStatus(v1::JobStatus* status);
  Status ScaleWorkers(const v1::ScaleWorkersRequest& req, v1::ScaleWorkersReply* reply);
  // Rendezvous service (rendezvous_host.h): callers are workers of live registered nodes.
  Status Join(const v1::JoinRequest& req, v1::JoinReply* reply, Deferred* d);
  void GetGeneration(v1::Generation* reply) { rendezvous_.GetGeneration(reply); }
  Status KvSet(const v1::KvSetRequest& req, Deferred* d);
  Status KvGet(const v1::KvGetRequest& req, v1::KvGetReply* reply);
  Status KvAdd(const v1::KvAddRequest& req, v1::KvAddReply* reply, Deferred* d);
  // Before serving: what earlier lives of this master left (StateStore::LoadMetaValues).
  Status RestoreRendezvous(const std::map<std::string, std::string>& meta_values);
  // PolicyHost, for the controller's policies (monitor thread).
  void SetJobValue(const std::string& key, const std::string& value) override;
  std::optional<std::string> GetJobValue(const std::string& key) override;
  void SetWorkerNote(const std::string& worker_id, const std::string& name, double value) override;

  // One pass of the monitor and controller: expires leases, declares silent nodes dead and revokes
  // their leases, runs the controller's policies while the job is unfinished, finalizes the job
  // when every shard is settled, gives up when no agent is left (agents_gone), refreshes metrics.
  void MonitorTick();
  bool finished() const { return finalized_.load(); }
  // Not OK once the state store has failed (a full or broken disk): the master can no longer
  // acknowledge anything and must stop; the store keeps everything acknowledged before.
  Status fatal() const;
  // True once no agent has been alive for timeouts.agents_gone_ms before the job finished: the
  // master then exits unfinished (code 4) instead of waiting for ever.
  bool agents_gone() const { return agents_gone_.load(); }
  // True when the master may exit: finished, and every live agent got its STOP (or waited enough).
  bool ReadyToExit(int64_t stop_wait_ms) const;
  v1::JobState State() const;

 private:
  Status WaitDurable(uint64_t seq);
  Status StoreFailed(const Status& cause);
  void FillLease(const LeaseOutcome& out, v1::LeaseShardReply* reply);
  void SampleRate(int64_t now_ms);
  // Deletes the staged outputs of leases taken away from their workers.
  void DiscardLost(const std::vector<LostLease>& lost);
  // Running time of the job over every life of its master.
  int64_t ActiveMillis() const;
  // A rendezvous caller's (node rank, local rank); Unavailable when its node is not live here.
  Result<std::pair<int32_t, int32_t>> RendezvousCaller(const std::string& worker_id);
  // The rendezvous' planned set from the live nodes; forms a generation whose time has come.
  // Appends the per-node worker counts to the state store if they changed; the seq to wait for
  // (0: nothing to write).
  uint64_t PersistNodeWorkers();
  std::mutex node_workers_mu_;     // PersistNodeWorkers: take and append as one
  uint64_t node_workers_seq_ = 0;  // the seq of the last append of the counts
  uint64_t PlanRendezvous(int64_t now_ms);
  // Queues the counters and running time for the store (they survive a restart).
  uint64_t PersistProgressMeta();
  // Monitor thread: sets agents_gone_ when no node has been alive for too long.
  void CheckAgentsGone();

  JobSpec spec_;
  std::string token_;
  std::string job_id_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<Dds> dds_;
  std::unique_ptr<MetricsExporter> metrics_;  // null when metrics are off
  int64_t metrics_updated_ms_ = 0;            // monitor thread only
  OutputCommitter output_;
  Registry registry_;
  Controller controller_{registry_};  // ticked by the monitor thread only
  RendezvousHost rendezvous_;
  // Workers each node's agent runs: worker.per_node until `baton scale` changes it (persisted).
  std::atomic<int32_t> workers_per_node_;
  // Workers that exited for good (the agent will not restart them: done, or out of restarts):
  // not planned in a generation, so the others do not wait for them. A join takes one back.
  std::mutex departed_mu_;
  std::set<std::string> departed_;
  std::unique_ptr<RunClock> clock_;
  int64_t active_ms_before_;       // running time of earlier lives of the master
  int64_t started_ms_;             // this life's start, on clock_
  int64_t meta_persisted_ms_ = 0;  // monitor thread only
  mutable std::mutex fatal_mu_;
  Status fatal_;
  std::atomic<bool> finalized_{false};
  std::atomic<int64_t> finished_at_ms_{0};
  int64_t no_live_node_since_ms_;  // monotonic; monitor thread only
  std::atomic<bool> agents_gone_{false};
  // Job-wide records/s over the last few seconds, for the progress line and ETA.
  mutable std::mutex rate_mu_;
  std::deque<std::pair<int64_t, uint64_t>> rate_samples_;
};

}  // namespace baton::master
