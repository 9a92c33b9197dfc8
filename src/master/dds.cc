#include "master/dds.h"

#include <sys/random.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <numeric>
#include <random>

namespace baton::master {

namespace {
constexpr size_t kDeadReasonsInMemory = 1000;
}  // namespace

const char* ShardStateName(ShardState s) {
  switch (s) {
    case ShardState::kTodo:
      return "TODO";
    case ShardState::kDoing:
      return "DOING";
    case ShardState::kDone:
      return "DONE";
    case ShardState::kDead:
      return "DEAD";
  }
  return "?";
}

Dds::Dds(StateStore* store, DdsOptions options) : store_(store), options_(options) {}

Result<std::unique_ptr<Dds>> Dds::Open(StateStore* store, DdsOptions options, const JobMeta& meta,
                                       DatasetSplitter* splitter, const ShardLayout& layout,
                                       int64_t now_ms) {
  std::unique_ptr<Dds> dds(new Dds(store, options));
  BATON_ASSIGN_OR_RETURN(std::optional<JobMeta> existing, store->LoadMeta());
  if (!existing) {
    BATON_ASSIGN_OR_RETURN(std::vector<RecordRange> ranges, splitter->Split());
    if (ranges.empty()) return Status::InvalidArgument("empty dataset: no records to process");
    // Shard ids follow lease order: epoch by epoch, each epoch optionally shuffled with its own
    // seeded permutation, so the order is reproducible from the spec alone.
    std::vector<Shard> shards;
    shards.reserve(ranges.size() * static_cast<size_t>(layout.epochs));
    std::vector<uint32_t> order(ranges.size());
    for (int32_t e = 0; e < layout.epochs; ++e) {
      std::iota(order.begin(), order.end(), 0u);
      if (layout.shuffle) {
        std::mt19937_64 rng(layout.seed * 1000003ull + static_cast<uint64_t>(e));
        std::shuffle(order.begin(), order.end(), rng);
      }
      for (uint32_t idx : order) {
        Shard s;
        s.id = shards.size();
        s.range = ranges[idx];
        s.epoch = static_cast<uint32_t>(e);
        shards.push_back(s);
      }
    }
    BATON_RETURN_IF_ERROR(store->CreateJob(meta, shards));
    dds->shards_ = std::move(shards);
  } else {
    if (existing->fingerprint != meta.fingerprint) {
      return Status::FailedPrecondition(
          "the state dir holds job '" + existing->job_id +
          "' created from different input or split options; use a new state dir (or delete it) "
          "to start over");
    }
    Status load = store->LoadShards([&](StoredShard&& st) {
      Shard s = st.shard;
      if (s.state == ShardState::kDoing) {
        s.worker = dds->InternWorker(st.worker);
        s.deadline_ms = now_ms + options.lease_ms;
      }
      if (s.state == ShardState::kDead) {
        dds->dead_errors_[s.id] = st.error;
      }
      dds->next_lease_seq_ = std::max(dds->next_lease_seq_, (s.token >> 32) + 1);
      dds->shards_.push_back(s);
    });
    BATON_RETURN_IF_ERROR(load);
  }
  for (const Shard& s : dds->shards_) {
    DdsCounts& c = dds->counts_;
    ++c.total;
    c.records_total += s.range.record_count;
    switch (s.state) {
      case ShardState::kTodo:
        ++c.todo;
        dds->todo_.push_back(s.id);
        break;
      case ShardState::kDoing:
        ++c.doing;
        dds->doing_.insert(s.id);
        break;
      case ShardState::kDone:
        ++c.done;
        c.records_done += s.range.record_count;
        break;
      case ShardState::kDead:
        ++c.dead;
        break;
    }
  }
  return dds;
}

uint32_t Dds::InternWorker(std::string_view worker) {
  auto it = worker_index_.find(std::string(worker));
  if (it != worker_index_.end()) return it->second;
  uint32_t idx = static_cast<uint32_t>(worker_names_.size());
  worker_names_.emplace_back(worker);
  worker_index_.emplace(std::string(worker), idx);
  return idx;
}

uint64_t Dds::AppendLocked(const Shard& s, std::string error) {
  ShardUpdate u;
  u.id = s.id;
  u.state = s.state;
  u.attempts = s.attempts;
  u.token = s.token;
  if (s.state == ShardState::kDoing && s.worker != kNoWorker) u.worker = worker_names_[s.worker];
  u.error = std::move(error);
  return store_->Append(std::move(u));
}

LeaseOutcome Dds::Lease(std::string_view worker, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  LeaseOutcome out;
  if (todo_.empty()) {
    out.kind = doing_.empty() ? LeaseOutcome::kEnd : LeaseOutcome::kWait;
    return out;
  }
  Shard& s = shards_[todo_.front()];
  todo_.pop_front();
  s.state = ShardState::kDoing;
  s.attempts = static_cast<uint16_t>(s.attempts + 1);
  s.token = NextTokenLocked();
  s.deadline_ms = now_ms + options_.lease_ms;
  s.worker = InternWorker(worker);
  doing_.insert(s.id);
  --counts_.todo;
  ++counts_.doing;
  ++counts_.leases_granted;
  out.kind = LeaseOutcome::kLeased;
  out.shard = s;
  out.seq = AppendLocked(s);
  return out;
}

uint64_t Dds::NextTokenLocked() {
  uint32_t salt = 0;
  while (::getrandom(&salt, sizeof(salt), 0) != static_cast<ssize_t>(sizeof(salt))) {
  }
  return (next_lease_seq_++ << 32) | salt;
}

Result<Shard*> Dds::HeldLocked(uint64_t shard_id, uint64_t token, std::string_view worker,
                               const char* verb) {
  Shard* s = shard_id < shards_.size() ? &shards_[shard_id] : nullptr;
  if (s == nullptr || s->state != ShardState::kDoing || s->token != token ||
      s->worker == kNoWorker || worker_names_[s->worker] != worker) {
    return Status::Fenced(std::string(verb) + " of shard " + std::to_string(shard_id) +
                          " refused: worker " + std::string(worker) +
                          " holds no lease of it with that token");
  }
  return s;
}

Result<int64_t> Dds::Renew(uint64_t shard_id, uint64_t token, std::string_view worker,
                           int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_ASSIGN_OR_RETURN(Shard * s, HeldLocked(shard_id, token, worker, "renewal"));
  s->deadline_ms = now_ms + options_.lease_ms;
  return s->deadline_ms;
}

Result<Dds::CommitOutcome> Dds::Commit(uint64_t shard_id, uint64_t token, std::string_view worker) {
  std::lock_guard<std::mutex> lock(mu_);
  CommitOutcome out;
  if (shard_id < shards_.size() && shards_[shard_id].state == ShardState::kDone &&
      shards_[shard_id].token == token) {
    // The worker did not see our first answer (e.g. the master restarted): same answer again.
    // The token alone identifies the committer: only its holder ever saw it.
    out.already_committed = true;
    out.shard = shards_[shard_id];
    return out;
  }
  Result<Shard*> held = HeldLocked(shard_id, token, worker, "commit");
  if (!held.ok()) {
    ++counts_.commits_fenced;
    return held.status();
  }
  Shard& s = **held;
  s.state = ShardState::kDone;
  s.worker = kNoWorker;
  doing_.erase(s.id);
  --counts_.doing;
  ++counts_.done;
  counts_.records_done += s.range.record_count;
  out.shard = s;
  out.seq = AppendLocked(s);
  return out;
}

uint64_t Dds::RequeueLocked(Shard& s, std::string_view reason, bool* dead) {
  std::string capped(reason.substr(0, static_cast<size_t>(options_.max_error_bytes)));
  doing_.erase(s.id);
  --counts_.doing;
  s.worker = kNoWorker;
  if (s.attempts > options_.max_shard_retries) {
    s.state = ShardState::kDead;
    ++counts_.dead;
    // Reasons stay in the store; memory keeps only the first ones so mass failure cannot
    // exhaust the master.
    dead_errors_[s.id] = dead_errors_.size() < kDeadReasonsInMemory ? capped : std::string();
    if (dead) *dead = true;
  } else {
    s.state = ShardState::kTodo;
    ++counts_.todo;
    ++counts_.requeues;
    todo_.push_front(s.id);  // retry first: a lost shard is the likeliest to hold up the job's end
  }
  return AppendLocked(s, std::move(capped));
}

Result<Dds::FailOutcome> Dds::Fail(uint64_t shard_id, uint64_t token, std::string_view worker,
                                   std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  BATON_ASSIGN_OR_RETURN(Shard * s, HeldLocked(shard_id, token, worker, "failure report"));
  FailOutcome out;
  out.seq = RequeueLocked(*s, reason, &out.dead_lettered);
  return out;
}

template <typename Pred>
uint64_t Dds::RevokeLocked(Pred pred, std::string_view reason, std::vector<LostLease>* lost) {
  std::vector<uint64_t> victims;
  for (uint64_t id : doing_) {
    if (pred(shards_[id])) victims.push_back(id);
  }
  std::sort(victims.begin(), victims.end(), std::greater<>());  // lowest id ends up in front
  uint64_t seq = 0;
  for (uint64_t id : victims) {
    if (lost) lost->push_back({id, shards_[id].token});
    seq = RequeueLocked(shards_[id], reason, nullptr);
  }
  return seq;
}

uint64_t Dds::ExpireLeases(int64_t now_ms, std::vector<LostLease>* lost) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LostLease> expired;
  uint64_t seq = RevokeLocked([&](const Shard& s) { return s.deadline_ms <= now_ms; },
                              "lease expired", &expired);
  counts_.leases_expired += expired.size();
  if (lost) lost->insert(lost->end(), expired.begin(), expired.end());
  return seq;
}

uint64_t Dds::RevokeWorker(std::string_view worker, std::string_view reason,
                           std::vector<LostLease>* lost) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = worker_index_.find(std::string(worker));
  if (it == worker_index_.end()) return 0;
  uint32_t idx = it->second;
  return RevokeLocked([&](const Shard& s) { return s.worker == idx; }, reason, lost);
}

uint64_t Dds::RevokeWorkersWithPrefix(std::string_view prefix, std::string_view reason,
                                      std::vector<LostLease>* lost) {
  std::lock_guard<std::mutex> lock(mu_);
  return RevokeLocked(
      [&](const Shard& s) {
        return s.worker != kNoWorker && worker_names_[s.worker].starts_with(prefix);
      },
      reason, lost);
}

uint64_t Dds::ReleaseAllLeases(int* released) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> ids(doing_.begin(), doing_.end());
  std::sort(ids.begin(), ids.end(), std::greater<>());  // lowest id ends up in front
  uint64_t seq = 0;
  for (uint64_t id : ids) {
    Shard& s = shards_[id];
    s.attempts = static_cast<uint16_t>(s.attempts - 1);  // that attempt was cut short from outside
    s.state = ShardState::kTodo;
    s.worker = kNoWorker;
    doing_.erase(id);
    --counts_.doing;
    ++counts_.todo;
    todo_.push_front(id);
    seq = AppendLocked(s);
  }
  if (released) *released = static_cast<int>(ids.size());
  return seq;
}

uint64_t Dds::RetryDeadLetters(int* retried) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<uint64_t> ids;
  for (const Shard& s : shards_) {
    if (s.state == ShardState::kDead) ids.push_back(s.id);
  }
  uint64_t seq = 0;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {  // lowest id ends up in front
    Shard& s = shards_[*it];
    s.attempts = 0;
    s.state = ShardState::kTodo;
    --counts_.dead;
    ++counts_.todo;
    todo_.push_front(s.id);
    dead_errors_.erase(s.id);
    seq = AppendLocked(s);
  }
  if (retried) *retried = static_cast<int>(ids.size());
  return seq;
}

std::string Dds::EncodeEventCounters(const DdsCounts& c) {
  char buf[128];
  std::snprintf(buf, sizeof(buf), "%" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64, c.leases_granted,
                c.leases_expired, c.commits_fenced, c.requeues);
  return buf;
}

void Dds::RestoreEventCounters(std::string_view encoded) {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t v[4] = {};
  std::string text(encoded);
  if (std::sscanf(text.c_str(), "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64, &v[0], &v[1], &v[2],
                  &v[3]) != 4) {
    return;  // unknown format (an older master): start from zero as before
  }
  counts_.leases_granted = v[0];
  counts_.leases_expired = v[1];
  counts_.commits_fenced = v[2];
  counts_.requeues = v[3];
}

DdsCounts Dds::Counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

std::vector<DeadLetterInfo> Dds::DeadLetters(size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<DeadLetterInfo> out;
  for (const auto& [id, error] : dead_errors_) {
    if (out.size() >= limit) break;
    out.push_back({id, shards_[id].attempts, error});
  }
  std::sort(out.begin(), out.end(), [](const DeadLetterInfo& a, const DeadLetterInfo& b) {
    return a.shard_id < b.shard_id;
  });
  return out;
}

bool Dds::Finished() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_.done + counts_.dead == counts_.total;
}

std::optional<Shard> Dds::Get(uint64_t shard_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (shard_id >= shards_.size()) return std::nullopt;
  return shards_[shard_id];
}

}  // namespace baton::master
