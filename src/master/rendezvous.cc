#include "master/rendezvous.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

namespace baton::master {
namespace {

bool RankOrder(const RendezvousMember& a, const RendezvousMember& b) {
  return std::tie(a.node_rank, a.local_rank, a.worker_id) <
         std::tie(b.node_rank, b.local_rank, b.worker_id);
}

}  // namespace

int GenerationInfo::RankOf(const std::string& worker_id) const {
  for (size_t i = 0; i < members.size(); ++i) {
    if (members[i].worker_id == worker_id) return static_cast<int>(i);
  }
  return -1;
}

int GenerationInfo::Nodes() const {
  std::set<int32_t> nodes;
  for (const auto& m : members) nodes.insert(m.node_rank);
  return static_cast<int>(nodes.size());
}

int GenerationInfo::MaxLocal() const {
  std::map<int32_t, int> per_node;
  int most = 0;
  for (const auto& m : members) most = std::max(most, ++per_node[m.node_rank]);
  return most;
}

// One line "id active", then one line "worker_id node_rank local_rank" per member in rank order.
// Worker ids never hold whitespace (request_limits.h).
std::string Rendezvous::Serialize() const {
  std::ostringstream out;
  out << generation_.id << ' ' << (generation_.active ? 1 : 0) << '\n';
  for (const auto& m : generation_.members) {
    out << m.worker_id << ' ' << m.node_rank << ' ' << m.local_rank << '\n';
  }
  return out.str();
}

Status Rendezvous::Restore(const std::string& serialized) {
  std::istringstream in(serialized);
  GenerationInfo g;
  int active = 0;
  if (!(in >> g.id >> active) || g.id < 0) {
    return Status::Internal("stored rendezvous generation is unreadable: \"" + serialized + "\"");
  }
  RendezvousMember m;
  while (in >> m.worker_id >> m.node_rank >> m.local_rank) g.members.push_back(m);
  if (!in.eof()) return Status::Internal("stored rendezvous members are unreadable");
  g.active = active != 0 && !g.members.empty();
  if (!g.active) g.end_reason = "ended before the master restarted";
  generation_ = std::move(g);
  return Status::Ok();
}

void Rendezvous::SetPlanned(std::vector<RendezvousMember> planned, bool complete, int64_t now_ms) {
  planned_ = std::move(planned);
  planned_complete_ = complete;
  MaybeForm(now_ms);
}

JoinState Rendezvous::Join(const RendezvousMember& member, int64_t known_generation, bool polling,
                           int64_t now_ms) {
  if (generation_.active) {
    const int rank = generation_.RankOf(member.worker_id);
    // It formed while this process waited. (A process never waits for the generation it already
    // knows: a "poll" naming it is a retried first join that wants out of it.)
    if (rank >= 0 && polling && known_generation != generation_.id) {
      return StateFor(member.worker_id);
    }
    End(rank < 0 ? "worker " + member.worker_id + " joined"
        : known_generation == generation_.id
            ? "worker " + member.worker_id + " left it (a collective failed there)"
            : "worker " + member.worker_id + " restarted and joined again");
  }
  auto it = std::find_if(waiting_.begin(), waiting_.end(),
                         [&](const auto& w) { return w.worker_id == member.worker_id; });
  if (it == waiting_.end()) {
    waiting_.push_back(member);
    if (!first_join_ms_) first_join_ms_ = now_ms;
  } else {
    *it = member;
  }
  MaybeForm(now_ms);
  return StateFor(member.worker_id);
}

void Rendezvous::Leave(const std::string& worker_id, const std::string& reason, int64_t now_ms) {
  std::erase_if(waiting_, [&](const auto& w) { return w.worker_id == worker_id; });
  if (waiting_.empty()) first_join_ms_.reset();
  if (generation_.active && generation_.RankOf(worker_id) >= 0) End(reason);
  MaybeForm(now_ms);
}

void Rendezvous::End(const std::string& reason) {
  if (!generation_.active) return;
  generation_.active = false;
  generation_.end_reason = reason;
  dirty_ = true;
  spdlog::info("rendezvous: generation {} ended: {}", generation_.id, reason);
}

void Rendezvous::Tick(int64_t now_ms) { MaybeForm(now_ms); }

std::vector<std::string> Rendezvous::WorkersWithPrefix(const std::string& prefix) const {
  std::vector<std::string> out;
  auto add = [&](const RendezvousMember& m) {
    if (m.worker_id.starts_with(prefix)) out.push_back(m.worker_id);
  };
  if (generation_.active)
    std::for_each(generation_.members.begin(), generation_.members.end(), add);
  std::for_each(waiting_.begin(), waiting_.end(), add);
  return out;
}

bool Rendezvous::TakeDirty() { return std::exchange(dirty_, false); }

void Rendezvous::MaybeForm(int64_t now_ms) {
  if (generation_.active || waiting_.empty()) return;
  bool all_planned = planned_complete_ && !planned_.empty();
  for (size_t i = 0; all_planned && i < planned_.size(); ++i) {
    all_planned = std::any_of(waiting_.begin(), waiting_.end(),
                              [&](const auto& w) { return w.worker_id == planned_[i].worker_id; });
  }
  const bool timed_out = first_join_ms_ && now_ms - *first_join_ms_ >= options_.timeout_ms &&
                         static_cast<int64_t>(waiting_.size()) >= options_.min_workers;
  if (all_planned || timed_out) Form();
}

void Rendezvous::Form() {
  GenerationInfo g;
  g.id = generation_.id + 1;
  g.members = std::move(waiting_);
  std::sort(g.members.begin(), g.members.end(), RankOrder);
  g.active = true;
  generation_ = std::move(g);
  waiting_.clear();
  first_join_ms_.reset();
  dirty_ = true;
  spdlog::info("rendezvous: generation {} formed: {} worker(s) on {} node(s)", generation_.id,
               generation_.members.size(), generation_.Nodes());
}

JoinState Rendezvous::StateFor(const std::string& worker_id) const {
  JoinState s;
  s.generation = generation_;
  s.rank = generation_.active ? generation_.RankOf(worker_id) : -1;
  s.formed = s.rank >= 0;
  s.waiting = static_cast<int32_t>(waiting_.size());
  s.planned = static_cast<int32_t>(planned_.size());
  return s;
}

}  // namespace baton::master
