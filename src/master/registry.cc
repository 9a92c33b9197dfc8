#include "master/registry.h"

#include <algorithm>
#include <cstdlib>

#include "common/job_limits.h"
#include "common/text_list.h"

namespace baton::master {

std::string EncodeNodeWorkers(const std::map<std::string, int32_t>& counts) {
  std::string out;
  for (const auto& [node, count] : counts) {
    if (!out.empty()) out += ',';
    out += node + "=" + std::to_string(count);
  }
  return out;
}

// Node ids hold neither ',' nor '=' (request_limits.h). A malformed entry is skipped: the node
// then follows the job-wide count, as it did before any count was set for it.
std::map<std::string, int32_t> DecodeNodeWorkers(const std::string& text) {
  std::map<std::string, int32_t> counts;
  for (std::string_view item : SplitOn(text, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0 || eq + 1 == item.size()) continue;
    const std::string number(item.substr(eq + 1));
    char* rest = nullptr;
    const long count = std::strtol(number.c_str(), &rest, 10);
    if (*rest == '\0' && count >= 0 && count <= kMaxWorkersPerNode) {
      counts[std::string(item.substr(0, eq))] = static_cast<int32_t>(count);
    }
  }
  return counts;
}

void Registry::RestoreRanks(const std::map<std::string, int32_t>& ranks) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, rank] : ranks) {
    ranks_[id] = rank;
    next_rank_ = std::max(next_rank_, rank + 1);
  }
}

void Registry::RestoreNodeWorkers(const std::map<std::string, int32_t>& counts) {
  std::lock_guard<std::mutex> lock(mu_);
  node_workers_ = counts;
}

Result<Registry::Registration> Registry::RegisterNode(const std::string& node_id, int32_t agent_pid,
                                                      int64_t now_ms, size_t max_nodes,
                                                      bool spare) {
  std::lock_guard<std::mutex> lock(mu_);
  Registration r;
  auto known = ranks_.find(node_id);
  if (known == ranks_.end()) {
    if (ranks_.size() >= max_nodes) {
      return Status::FailedPrecondition("the job already has " + std::to_string(ranks_.size()) +
                                        " nodes, the most one job may have");
    }
    known = ranks_.emplace(node_id, next_rank_++).first;
    r.new_rank = true;
    if (spare) {
      node_workers_[node_id] = 0;
      node_workers_changed_ = true;
    }
  }
  auto [it, inserted] = nodes_.try_emplace(node_id);
  Node& n = it->second;
  n.rank = known->second;
  r.rank = n.rank;
  r.agent_replaced = !inserted && n.agent_pid != agent_pid;
  n.agent_pid = agent_pid;
  n.standby = spare;
  n.alive = true;
  n.stop_sent = false;
  n.last_heartbeat_ms = now_ms;
  return r;
}

bool Registry::Heartbeat(const v1::HeartbeatRequest& req, int64_t now_ms,
                         std::vector<v1::Action>* actions) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(req.node_id());
  if (it == nodes_.end() || !it->second.alive) return false;
  Node& n = it->second;
  n.last_heartbeat_ms = now_ms;
  n.workers_running = 0;
  n.restarts = 0;
  for (const auto& w : req.workers()) {
    if (w.phase() == v1::WORKER_PHASE_RUNNING) ++n.workers_running;
    n.restarts += w.restarts();
  }
  for (auto& a : n.pending) {
    if (a.kind() == v1::Action::KIND_STOP) n.stop_sent = true;
    actions->push_back(std::move(a));
  }
  n.pending.clear();
  return true;
}

void Registry::RecordExit(const v1::ReportExitRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(req.node_id());
  if (it != nodes_.end() && req.will_restart()) ++it->second.restarts;
}

std::optional<int32_t> Registry::LiveNodeRank(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.alive) return std::nullopt;
  return it->second.rank;
}

size_t Registry::KnownNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ranks_.size();
}

size_t Registry::KnownWorkingNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [id, rank] : ranks_) {
    auto it = node_workers_.find(id);
    n += it == node_workers_.end() || it->second > 0 ? 1 : 0;
  }
  return n;
}

std::optional<int32_t> Registry::NodeWorkers(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = node_workers_.find(node_id);
  if (it == node_workers_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Registry::ReplaceWithSpare(const std::string& dead_node,
                                                      int32_t job_wide, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto planned = node_workers_.find(dead_node);
  const int32_t count = planned == node_workers_.end() ? job_wide : planned->second;
  if (count <= 0) return std::nullopt;
  const std::pair<const std::string, Node>* spare = nullptr;
  for (const auto& entry : nodes_) {
    const auto& [id, n] = entry;
    auto c = node_workers_.find(id);
    if (!n.alive || !n.standby || c == node_workers_.end() || c->second != 0) continue;
    if (spare == nullptr || n.rank < spare->second.rank) spare = &entry;
  }
  if (spare == nullptr) return std::nullopt;
  const std::string id = spare->first;
  v1::Action grow;
  grow.set_kind(v1::Action::KIND_SET_WORKER_COUNT);
  grow.set_worker_count(count);
  grow.set_reason(reason);
  QueueLocked(id, nodes_.at(id), grow);
  node_workers_[dead_node] = 0;
  node_workers_changed_ = true;
  return id;
}

std::optional<std::map<std::string, int32_t>> Registry::TakeChangedNodeWorkers() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!node_workers_changed_) return std::nullopt;
  node_workers_changed_ = false;
  return node_workers_;
}

bool Registry::KnownNode(const std::string& node_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  return ranks_.count(node_id) > 0;
}

void Registry::RecordProgress(const v1::ReportProgressRequest& req, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  Worker& w = workers_[req.worker_id()];
  w.node_id = req.node_id();
  // A restarted worker process counts from zero again; keep the window monotone per process.
  if (!w.samples.empty() && req.records_total() < w.samples.back().second) w.samples.clear();
  w.samples.emplace_back(now_ms, req.records_total());
  while (w.samples.size() > 2 && w.samples.front().first < now_ms - speed_window_ms_) {
    w.samples.pop_front();
  }
  w.records_total = req.records_total();
  w.cpu_seconds = req.cpu_seconds();
  w.rss_bytes = req.rss_bytes();
  w.last_seen_ms = now_ms;
  w.counters.clear();
  for (const auto& [name, n] : req.counters()) w.counters[name] = n;
  w.gauges.clear();
  for (const auto& [name, v] : req.gauges()) w.gauges[name] = v;
}

void Registry::SetNote(const std::string& worker_id, const std::string& name, double value) {
  std::lock_guard<std::mutex> lock(mu_);
  Worker& w = workers_[worker_id];
  if (w.node_id.empty()) w.node_id = worker_id.substr(0, worker_id.find('/'));
  w.notes[name] = value;
}

void Registry::RecordCommit(const std::string& worker_id, uint64_t records) {
  std::lock_guard<std::mutex> lock(mu_);
  Worker& w = workers_[worker_id];
  if (w.node_id.empty()) w.node_id = worker_id.substr(0, worker_id.find('/'));
  ++w.shards_committed;
  w.records_committed += records;
}

std::vector<std::string> Registry::CollectDeadNodes(int64_t now_ms, int64_t dead_after_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> dead;
  for (auto& [id, n] : nodes_) {
    if (n.alive && now_ms - n.last_heartbeat_ms > dead_after_ms) {
      n.alive = false;
      dead.push_back(id);
    }
  }
  return dead;
}

void Registry::QueueLocked(const std::string& node_id, Node& node, const v1::Action& action) {
  if (action.kind() == v1::Action::KIND_SET_WORKER_COUNT) {
    node_workers_[node_id] = action.worker_count();
    node_workers_changed_ = true;
  }
  node.pending.push_back(action);
}

void Registry::QueueAction(const std::string& node_id, const v1::Action& action) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node_id);
  if (it != nodes_.end()) QueueLocked(node_id, it->second, action);
}

bool Registry::QueueActionIfAlive(const std::string& node_id, const v1::Action& action) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = nodes_.find(node_id);
  if (it == nodes_.end() || !it->second.alive) return false;
  QueueLocked(node_id, it->second, action);
  return true;
}

int Registry::QueueActionForAll(const v1::Action& action) {
  std::lock_guard<std::mutex> lock(mu_);
  const bool scale = action.kind() == v1::Action::KIND_SET_WORKER_COUNT;
  if (scale) {
    // Every node that runs workers follows the job-wide count again, dead or not registered
    // since a master restart included; spares and emptied nodes stay empty.
    const size_t before = node_workers_.size();
    std::erase_if(node_workers_, [](const auto& kv) { return kv.second > 0; });
    node_workers_changed_ = node_workers_changed_ || node_workers_.size() != before;
  }
  int n = 0;
  for (auto& [id, node] : nodes_) {
    if (!node.alive || (scale && node_workers_.contains(id))) continue;
    node.pending.push_back(action);
    ++n;
  }
  return n;
}

bool Registry::AllLiveNodesStopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, n] : nodes_) {
    if (n.alive && !n.stop_sent) return false;
  }
  return true;
}

std::vector<Registry::LiveNode> Registry::LiveNodePlans() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LiveNode> out;
  for (const auto& [id, n] : nodes_) {
    if (!n.alive) continue;
    auto count = node_workers_.find(id);
    out.push_back(LiveNode{
        .node_id = id,
        .rank = n.rank,
        .workers = count == node_workers_.end() ? std::nullopt : std::optional(count->second)});
  }
  return out;
}

int Registry::LiveNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  for (const auto& [id, node] : nodes_) n += node.alive ? 1 : 0;
  return n;
}

double Registry::SpeedLocked(const Worker& w) const {
  if (w.samples.size() < 2) return 0;
  const auto& [t0, r0] = w.samples.front();
  const auto& [t1, r1] = w.samples.back();
  if (t1 <= t0) return 0;
  return static_cast<double>(r1 - r0) * 1000.0 / static_cast<double>(t1 - t0);
}

ClusterView Registry::Snapshot(int64_t now_ms) const {
  std::lock_guard<std::mutex> lock(mu_);
  ClusterView view;
  view.now_ms = now_ms;
  view.nodes.reserve(nodes_.size());
  for (const auto& [id, n] : nodes_) {
    auto count = node_workers_.find(id);
    view.nodes.push_back(
        NodeSignals{.node_id = id,
                    .rank = n.rank,
                    .alive = n.alive,
                    .last_heartbeat_ms = n.last_heartbeat_ms,
                    .workers_running = n.workers_running,
                    .restarts = n.restarts,
                    .planned_workers = count == node_workers_.end() ? -1 : count->second});
  }
  view.workers.reserve(workers_.size());
  for (const auto& [id, w] : workers_) {
    view.workers.push_back(WorkerSignals{
        .worker_id = id,
        .node_id = w.node_id,
        .records_per_s = now_ms - w.last_seen_ms > speed_window_ms_ ? 0.0 : SpeedLocked(w),
        .records_total = std::max(w.records_total, w.records_committed),
        .shards_committed = w.shards_committed,
        .cpu_seconds = w.cpu_seconds,
        .rss_bytes = w.rss_bytes,
        .last_seen_ms = w.last_seen_ms ? w.last_seen_ms : -1,
        .counters = w.counters,
        .gauges = w.gauges,
        .notes = w.notes});
  }
  return view;
}

void Registry::FillStatus(v1::JobStatus* status, int64_t now_ms) const {
  const ClusterView view = Snapshot(now_ms);
  for (const NodeSignals& n : view.nodes) {
    auto* ns = status->add_nodes();
    ns->set_node_id(n.node_id);
    ns->set_node_rank(n.rank);
    ns->set_alive(n.alive);
    // Never negative: a heartbeat taken just before the run clock left out a pause.
    ns->set_last_heartbeat_ms_ago(std::max<int64_t>(0, now_ms - n.last_heartbeat_ms));
    ns->set_workers_running(n.workers_running);
    ns->set_restarts(n.restarts);
  }
  for (const WorkerSignals& w : view.workers) {
    auto* ws = status->add_workers();
    ws->set_worker_id(w.worker_id);
    ws->set_node_id(w.node_id);
    ws->set_records_per_s(w.records_per_s);
    ws->set_records_total(w.records_total);
    ws->set_shards_committed(w.shards_committed);
    ws->set_cpu_seconds(w.cpu_seconds);
    ws->set_rss_bytes(w.rss_bytes);
    ws->set_last_seen_ms_ago(w.last_seen_ms >= 0 ? std::max<int64_t>(0, now_ms - w.last_seen_ms)
                                                 : -1);
    for (const auto& [name, n] : w.counters) (*ws->mutable_counters())[name] = n;
    for (const auto& [name, v] : w.gauges) (*ws->mutable_gauges())[name] = v;
    for (const auto& [name, v] : w.notes) (*ws->mutable_gauges())[name] = v;
  }
}

uint64_t Registry::total_restarts() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t total = 0;
  for (const auto& [id, n] : nodes_) total += static_cast<uint64_t>(n.restarts);
  return total;
}

}  // namespace baton::master
