#include "master/dds.h"

#include <algorithm>
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
      dds->next_token_ = std::max(dds->next_token_, s.token + 1);
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
  s.token = next_token_++;
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

Result<int64_t> Dds::Renew(uint64_t shard_id, uint64_t token, int64_t now_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shard_id >= shards_.size()) return Status::NotFound("no shard " + std::to_string(shard_id));
  Shard& s = shards_[shard_id];
  if (s.state != ShardState::kDoing || s.token != token) {
    return Status::Fenced("lease of shard " + std::to_string(shard_id) + " with token " +
                          std::to_string(token) + " is no longer valid (shard is " +
                          ShardStateName(s.state) + ")");
  }
  s.deadline_ms = now_ms + options_.lease_ms;
  return s.deadline_ms;
}

Result<Dds::CommitOutcome> Dds::Commit(uint64_t shard_id, uint64_t token) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shard_id >= shards_.size()) return Status::NotFound("no shard " + std::to_string(shard_id));
  Shard& s = shards_[shard_id];
  CommitOutcome out;
  if (s.state == ShardState::kDone && s.token == token) {
    // The worker did not see our first answer (e.g. the master restarted): same answer again.
    out.already_committed = true;
    out.shard = s;
    return out;
  }
  if (s.state != ShardState::kDoing || s.token != token) {
    ++counts_.commits_fenced;
    return Status::Fenced(
        "commit of shard " + std::to_string(shard_id) + " with token " + std::to_string(token) +
        " rejected: the lease is no longer valid (shard " + ShardStateName(s.state) + ")");
  }
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

Result<Dds::FailOutcome> Dds::Fail(uint64_t shard_id, uint64_t token, std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shard_id >= shards_.size()) return Status::NotFound("no shard " + std::to_string(shard_id));
  Shard& s = shards_[shard_id];
  if (s.state != ShardState::kDoing || s.token != token) {
    return Status::Fenced("fail of shard " + std::to_string(shard_id) +
                          " ignored: the lease is no longer valid");
  }
  FailOutcome out;
  out.seq = RequeueLocked(s, reason, &out.dead_lettered);
  return out;
}

template <typename Pred>
uint64_t Dds::RevokeLocked(Pred pred, std::string_view reason, int* revoked) {
  std::vector<uint64_t> victims;
  for (uint64_t id : doing_) {
    if (pred(shards_[id])) victims.push_back(id);
  }
  std::sort(victims.begin(), victims.end(), std::greater<>());  // lowest id ends up in front
  uint64_t seq = 0;
  for (uint64_t id : victims) seq = RequeueLocked(shards_[id], reason, nullptr);
  if (revoked) *revoked = static_cast<int>(victims.size());
  return seq;
}

uint64_t Dds::ExpireLeases(int64_t now_ms, int* expired) {
  std::lock_guard<std::mutex> lock(mu_);
  int n = 0;
  uint64_t seq =
      RevokeLocked([&](const Shard& s) { return s.deadline_ms <= now_ms; }, "lease expired", &n);
  counts_.leases_expired += static_cast<uint64_t>(n);
  if (expired) *expired = n;
  return seq;
}

uint64_t Dds::RevokeWorker(std::string_view worker, std::string_view reason, int* revoked) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = worker_index_.find(std::string(worker));
  if (it == worker_index_.end()) {
    if (revoked) *revoked = 0;
    return 0;
  }
  uint32_t idx = it->second;
  return RevokeLocked([&](const Shard& s) { return s.worker == idx; }, reason, revoked);
}

uint64_t Dds::RevokeWorkersWithPrefix(std::string_view prefix, std::string_view reason,
                                      int* revoked) {
  std::lock_guard<std::mutex> lock(mu_);
  return RevokeLocked(
      [&](const Shard& s) {
        return s.worker != kNoWorker && worker_names_[s.worker].starts_with(prefix);
      },
      reason, revoked);
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
