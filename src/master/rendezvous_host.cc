#include "master/rendezvous_host.h"

#include <algorithm>
#include <utility>

namespace baton::master {
namespace {

constexpr int kMaxGetKeys = 1024;

void ToProto(const GenerationInfo& g, v1::Generation* out) {
  out->set_id(g.id);
  out->set_active(g.active);
  out->set_end_reason(g.end_reason);
  for (const RendezvousMember& m : g.members) {
    v1::RendezvousMember* pm = out->add_members();
    pm->set_worker_id(m.worker_id);
    pm->set_node_rank(m.node_rank);
    pm->set_local_rank(m.local_rank);
  }
}

}  // namespace

Status RendezvousHost::Restore(const std::map<std::string, std::string>& meta_values) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = meta_values.find(kGenerationMetaKey);
  if (it == meta_values.end()) return Status::Ok();
  BATON_RETURN_IF_ERROR(rdzv_.Restore(it->second));
  const int64_t id = rdzv_.generation().id;
  persisted_id_ = id;
  Status kv_status;
  BATON_RETURN_IF_ERROR(store_.LoadKv([&](int64_t scope, std::string key, std::string value) {
    if ((scope == id || scope == kJobScope) && kv_status.ok()) {
      kv_status = kv_.Set(scope, key, std::move(value));
    }
  }));
  return kv_status;
}

Status RendezvousHost::Join(const v1::JoinRequest& req, int32_t node_rank, int32_t local_rank,
                            int64_t now_ms, v1::JoinReply* reply, uint64_t* seq) {
  if (req.known_generation() < 0) {
    return Status::InvalidArgument("known_generation must be >= 0");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (req.known_generation() > rdzv_.generation().id) {
    // A worker cannot know a generation that was never formed: a client that lies, or state of
    // another job.
    return Status::InvalidArgument(
        "known_generation " + std::to_string(req.known_generation()) +
        " was never formed (latest: " + std::to_string(rdzv_.generation().id) + ")");
  }
  JoinState s = rdzv_.Join(
      RendezvousMember{
          .worker_id = req.worker_id(), .node_rank = node_rank, .local_rank = local_rank},
      req.known_generation(), req.polling(), now_ms);
  // A poll that finds its generation formed is answered once the formation is durable, like the
  // join that formed it.
  *seq = std::max(PersistLocked(), generation_seq_);
  reply->set_formed(s.formed);
  reply->set_rank(s.rank);
  ToProto(s.generation, reply->mutable_generation());
  reply->set_waiting(s.waiting);
  reply->set_planned(s.planned);
  return Status::Ok();
}

void RendezvousHost::GetGeneration(v1::Generation* reply) {
  std::lock_guard<std::mutex> lock(mu_);
  ToProto(rdzv_.generation(), reply);
}

Status RendezvousHost::CheckScopeLocked(int64_t generation) const {
  if (generation == kJobScope) return Status::Ok();  // the job's, for any worker of the job
  const GenerationInfo& g = rdzv_.generation();
  if (generation == g.id && g.active) return Status::Ok();
  std::string now = g.active ? "generation " + std::to_string(g.id) + " is active"
                             : "no generation is active (generation " + std::to_string(g.id) +
                                   " ended: " + g.end_reason + ")";
  return Status::FailedPrecondition("generation " + std::to_string(generation) +
                                    " is not active: " + now);
}

Status RendezvousHost::KvSet(const v1::KvSetRequest& req, uint64_t* seq) {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_RETURN_IF_ERROR(CheckScopeLocked(req.generation()));
  BATON_RETURN_IF_ERROR(kv_.Set(req.generation(), req.key(), req.value()));
  *seq = store_.AppendKv(req.generation(), req.key(), req.value());
  return Status::Ok();
}

Status RendezvousHost::KvGet(const v1::KvGetRequest& req, v1::KvGetReply* reply) {
  if (req.keys_size() < 1 || req.keys_size() > kMaxGetKeys) {
    return Status::InvalidArgument("a kv get names 1-" + std::to_string(kMaxGetKeys) +
                                   " keys, got " + std::to_string(req.keys_size()));
  }
  std::lock_guard<std::mutex> lock(mu_);
  BATON_RETURN_IF_ERROR(CheckScopeLocked(req.generation()));
  std::vector<std::string> values;
  for (const std::string& key : req.keys()) {
    std::optional<std::string> v = kv_.Get(req.generation(), key);
    if (!v) {
      reply->set_found(false);
      return Status::Ok();
    }
    values.push_back(std::move(*v));
  }
  reply->set_found(true);
  for (std::string& v : values) reply->add_values(std::move(v));
  return Status::Ok();
}

Status RendezvousHost::KvAdd(const v1::KvAddRequest& req, v1::KvAddReply* reply, uint64_t* seq) {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_RETURN_IF_ERROR(CheckScopeLocked(req.generation()));
  BATON_ASSIGN_OR_RETURN(int64_t value, kv_.Add(req.generation(), req.key(), req.delta()));
  *seq = store_.AppendKv(req.generation(), req.key(), std::to_string(value));
  reply->set_value(value);
  return Status::Ok();
}

uint64_t RendezvousHost::Leave(const std::string& worker_id, const std::string& reason,
                               int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  rdzv_.Leave(worker_id, reason, now_ms);
  return PersistLocked();
}

uint64_t RendezvousHost::LeaveNode(const std::string& node_id, const std::string& reason,
                                   int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string prefix = node_id + "/";
  for (const std::string& w : rdzv_.WorkersWithPrefix(prefix)) rdzv_.Leave(w, reason, now_ms);
  return PersistLocked();
}

uint64_t RendezvousHost::End(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  rdzv_.End(reason);
  return PersistLocked();
}

uint64_t RendezvousHost::SetPlanned(std::vector<RendezvousMember> planned, bool complete,
                                    int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  rdzv_.SetPlanned(std::move(planned), complete, now_ms);
  return PersistLocked();
}

int64_t RendezvousHost::generation_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rdzv_.generation().id;
}

uint64_t RendezvousHost::PersistLocked() {
  if (!rdzv_.TakeDirty()) return 0;
  const int64_t id = rdzv_.generation().id;
  if (id != persisted_id_) {
    // A new generation formed: the addresses of the older ones are stale.
    kv_.DropBelow(id);
    store_.AppendKvEraseBelow(id);
    persisted_id_ = id;
  }
  generation_seq_ = store_.AppendMeta(kGenerationMetaKey, rdzv_.Serialize());
  return generation_seq_;
}

}  // namespace baton::master
