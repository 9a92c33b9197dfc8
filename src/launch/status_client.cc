#include "launch/status_client.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>
#include <map>
#include <string>

#include "baton/v1/baton.grpc.pb.h"
#include "common/grpc_util.h"

namespace baton::launch {
namespace {

std::string Human(double v) {
  char buf[32];
  if (v >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2fG", v / 1e9);
  else if (v >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.2fM", v / 1e6);
  else if (v >= 1e4)
    std::snprintf(buf, sizeof(buf), "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

std::string Duration(double s) {
  if (s < 0) return "?";
  char buf[32];
  long t = static_cast<long>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof(buf), "%lds", t);
  return buf;
}

}  // namespace

const char* JobStateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_RUNNING:
      return "RUNNING";
    case v1::JOB_STATE_SUCCEEDED:
      return "SUCCEEDED";
    case v1::JOB_STATE_FAILED:
      return "FAILED";
    case v1::JOB_STATE_PARTIAL:
      return "PARTIAL";
    default:
      return "UNKNOWN";
  }
}

Result<v1::JobStatus> FetchStatus(const std::string& address, const std::string& token,
                                  std::chrono::milliseconds deadline) {
  auto stub = v1::JobService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  PrepareContext(ctx, token, deadline);
  v1::JobStatus st;
  Status s = FromGrpc(stub->GetStatus(&ctx, v1::GetStatusRequest(), &st));
  if (!s.ok()) return s.WithContext("status from master at " + address);
  return st;
}

Result<int> ScaleWorkers(const std::string& address, const std::string& token,
                         int workers_per_node) {
  auto stub = v1::JobService::NewStub(MakeChannel(address));
  grpc::ClientContext ctx;
  PrepareContext(ctx, token);
  v1::ScaleWorkersRequest req;
  req.set_workers_per_node(workers_per_node);
  v1::ScaleWorkersReply reply;
  Status s = FromGrpc(stub->ScaleWorkers(&ctx, req, &reply));
  if (!s.ok()) return s.WithContext("scale via master at " + address);
  return reply.nodes_notified();
}

std::string ProgressLine(const v1::JobStatus& st) {
  char buf[256];
  int workers = 0;
  for (const auto& n : st.nodes()) workers += n.alive() ? n.workers_running() : 0;
  double pct = st.records_total() ? 100.0 * static_cast<double>(st.records_done()) /
                                        static_cast<double>(st.records_total())
                                  : 0.0;
  std::snprintf(buf, sizeof(buf),
                "%5.1f%%  shards %llu/%llu (%llu leased, %llu dead)  records %s/%s  %s rec/s  "
                "ETA %s  workers %d  restarts %llu",
                pct, static_cast<unsigned long long>(st.shards_done()),
                static_cast<unsigned long long>(st.shards_total()),
                static_cast<unsigned long long>(st.shards_doing()),
                static_cast<unsigned long long>(st.shards_dead()),
                Human(static_cast<double>(st.records_done())).c_str(),
                Human(static_cast<double>(st.records_total())).c_str(),
                Human(st.records_per_s()).c_str(), Duration(st.eta_s()).c_str(), workers,
                static_cast<unsigned long long>(st.worker_restarts()));
  return buf;
}

std::string HumanStatus(const v1::JobStatus& st) {
  std::string out = "job " + st.job_id() + ": " + JobStateName(st.state()) + " after " +
                    Duration(st.elapsed_s()) + "\n  " + ProgressLine(st) + "\n";
  char buf[256];
  std::snprintf(buf, sizeof(buf),
                "  leases granted %llu, expired %llu, fenced commits %llu, re-queues %llu\n",
                static_cast<unsigned long long>(st.leases_granted()),
                static_cast<unsigned long long>(st.leases_expired()),
                static_cast<unsigned long long>(st.commits_fenced()),
                static_cast<unsigned long long>(st.requeues()));
  out += buf;
  if (!st.output_dir().empty()) out += "  output: " + st.output_dir() + "\n";
  out += "nodes:\n";
  for (const auto& n : st.nodes()) {
    std::snprintf(
        buf, sizeof(buf), "  %-16s rank %d  %s  heartbeat %lld ms ago  workers %d  restarts %d\n",
        n.node_id().c_str(), n.node_rank(), n.alive() ? "alive" : "DEAD",
        static_cast<long long>(n.last_heartbeat_ms_ago()), n.workers_running(), n.restarts());
    out += buf;
  }
  out += "workers:\n";
  for (const auto& w : st.workers()) {
    std::snprintf(buf, sizeof(buf),
                  "  %-18s %10s rec/s  records %s  shards %llu  cpu %.1fs  rss %s\n",
                  w.worker_id().c_str(), Human(w.records_per_s()).c_str(),
                  Human(static_cast<double>(w.records_total())).c_str(),
                  static_cast<unsigned long long>(w.shards_committed()), w.cpu_seconds(),
                  (Human(static_cast<double>(w.rss_bytes())) + "B").c_str());
    out += buf;
    if (!w.counters().empty()) {
      // Sorted by name (a protobuf map has no order), so the line reads the same every time.
      std::map<std::string, uint64_t> sorted(w.counters().begin(), w.counters().end());
      std::string line = "    counters:";
      for (const auto& [name, n] : sorted) line += " " + name + "=" + std::to_string(n);
      out += line + "\n";
    }
    if (!w.gauges().empty()) {
      std::map<std::string, double> sorted(w.gauges().begin(), w.gauges().end());
      std::string line = "    gauges:";
      for (const auto& [name, v] : sorted) {
        char value[32];
        std::snprintf(value, sizeof(value), "%.6g", v);
        line += " " + name + "=" + value;
      }
      out += line + "\n";
    }
  }
  if (st.dead_letters_size() > 0) {
    out += "dead-lettered shards:\n";
    for (const auto& d : st.dead_letters()) {
      out += "  shard " + std::to_string(d.shard_id()) + " after " + std::to_string(d.attempts()) +
             " attempts: " + d.last_error() + "\n";
    }
  }
  return out;
}

std::string JsonStatus(const v1::JobStatus& st) {
  std::string json;
  google::protobuf::util::JsonPrintOptions opts;
  opts.add_whitespace = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(st, &json, opts);
  return json;
}

}  // namespace baton::launch
