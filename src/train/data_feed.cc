#include "train/data_feed.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "infer/output_format.h"

namespace baton::train {

Result<std::unique_ptr<DataFeed::ParsedShard>> DataFeed::LeaseAndParse(bool* finished) {
  while (true) {
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<sdk::Shard> shard, worker_.TryNextShard(finished));
    if (!shard) return std::unique_ptr<ParsedShard>();
    BATON_ASSIGN_OR_RETURN(std::unique_ptr<ParsedShard> parsed, Parse(std::move(shard)));
    if (parsed) return parsed;  // else it had too many bad records and was given back
  }
}

Result<std::unique_ptr<DataFeed::ParsedShard>> DataFeed::Parse(std::unique_ptr<sdk::Shard> shard) {
  auto parsed = std::make_unique<ParsedShard>();
  const std::string& file = shard->range().path;
  Result<infer::RowParser> parser = infer::RowParser::ForFile(spec_, file);
  // A schema that does not fit the file is the job's error, not the shard's: the worker stops
  // (preflight normally catches it before anything starts).
  if (!parser.ok()) return parser.status();
  parsed->rows = parser->NewBatch(shard->range().record_count);
  std::string errors, key;
  uint64_t record = shard->range().first_record, bad = 0, blank = 0;
  Status read = shard->ForEachRecord([&](std::string_view line) {
    const uint64_t index = record++;
    if (infer::IsBlankLine(line)) {
      ++blank;
      return Status::Ok();
    }
    Status s = parser->Append(line, &key, &parsed->rows);
    if (!s.ok()) {
      ++bad;
      errors += infer::ErrorRow(file, index, key, "parse", s.message());
    } else {
      ++parsed->count;
      parsed->fingerprints.push_back(RecordFingerprint(file, index));
    }
    return Status::Ok();
  });
  if (!read.ok()) {
    (void)worker_.Fail(*shard, read.ToString());
    return read.WithContext("reading shard " + std::to_string(shard->id()));
  }
  bad_records_ += bad;
  if (bad > 0) worker_.AddCounter("bad_records", bad);
  if (!spec_.errors_dir.empty()) {
    if (Status s = infer::WriteShardErrors(spec_.errors_dir, shard->id(), errors); !s.ok()) {
      spdlog::warn("shard {}: errors file: {}", shard->id(), s.ToString());
    }
  }
  const uint64_t total = shard->range().record_count - blank;
  if (total > 0 && static_cast<double>(bad) > spec_.max_error_rate * static_cast<double>(total)) {
    const std::string reason = std::to_string(bad) + " of " + std::to_string(total) +
                               " records failed (train.max_error_rate " +
                               std::to_string(spec_.max_error_rate) + ")";
    spdlog::warn("shard {}: {}; giving it back", shard->id(), reason);
    (void)worker_.Fail(*shard, reason);
    return std::unique_ptr<ParsedShard>();
  }
  parsed->shard = std::move(shard);
  return parsed;
}

void DataFeed::StartAt(ParsedShard& s, const ShardCursor* cursor) {
  s.cursor = cursor != nullptr ? *cursor : ShardCursor{};
  if (s.cursor.applied > s.count) {
    // The file changed under the job (fewer good rows than a snapshot applied): nothing of it is
    // left to apply, and the DDS's record counts already guard against a changed file.
    spdlog::warn("shard {}: the snapshot applied {} rows, the shard has {}", s.shard->id(),
                 s.cursor.applied, s.count);
    s.cursor.applied = s.count;
  }
  s.next = s.cursor.applied;
  s.started_at = s.next;
}

Result<DataFeed::Fill> DataFeed::Take(size_t want, std::vector<infer::HostTensor>* batch) {
  Fill fill;
  size_t from = 0;  // held_[< from] have no rows left to hand out
  // A shard whose lease was lost before any of its rows went out (a prefetched lease that
  // expired, say) is just dropped; one with rows out is lost() and rolls the ranks back.
  std::erase_if(held_, [](const std::unique_ptr<ParsedShard>& s) {
    return s->shard->lost() && s->next == s->started_at;
  });
  while (fill.rows < want) {
    while (from < held_.size() &&
           (held_[from]->next == held_[from]->count || held_[from]->shard->lost())) {
      ++from;
    }
    if (from == held_.size()) {
      bool finished = false;
      BATON_ASSIGN_OR_RETURN(std::unique_ptr<ParsedShard> next, LeaseAndParse(&finished));
      if (next) {
        auto it = cursors_.find(next->shard->id());
        StartAt(*next, it == cursors_.end() ? nullptr : &it->second);
        held_.push_back(std::move(next));  // one with no rows left is done once marked applied
        continue;
      }
      if (finished) fill.finished = true;
      // Otherwise every remaining shard is held elsewhere: the step goes on with what it has.
      break;
    }
    ParsedShard& s = *held_[from];
    epoch_ = s.shard->epoch();
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(want - fill.rows), s.count - s.next);
    if (batch->empty()) {
      for (const infer::HostTensor& t : s.rows) batch->push_back(infer::SliceRows(t, 0, 0));
    }
    for (size_t t = 0; t < s.rows.size(); ++t) {
      infer::HostTensor slice = infer::SliceRows(s.rows[t], s.next, s.next + n);
      (*batch)[t] = infer::ConcatRows({&(*batch)[t], &slice});
    }
    s.next += n;
    fill.rows += static_cast<size_t>(n);
  }
  return fill;
}

void DataFeed::MarkApplied(int64_t step) {
  for (auto& s : held_) {
    if (s->next > s->cursor.applied) {
      EpochLedger& l = progress_.applied[s->shard->epoch()];
      for (int64_t r = s->cursor.applied; r < s->next; ++r) {
        ++l.records;
        l.fingerprint += s->fingerprints[static_cast<size_t>(r)];
      }
      s->cursor.applied = s->next;
    }
    if (s->cursor.applied == s->count && s->cursor.complete_at < 0) s->cursor.complete_at = step;
  }
}

Status DataFeed::CommitDurable(int64_t durable_step) {
  for (auto it = held_.begin(); it != held_.end();) {
    const ParsedShard& s = **it;
    if (s.cursor.complete_at < 0 || s.cursor.complete_at > durable_step) {
      ++it;
      continue;
    }
    Status c = worker_.Commit(*s.shard);
    if (c.code() == StatusCode::kFenced) {
      spdlog::warn("shard {} was taken over by another worker; dropping it", s.shard->id());
    } else if (!c.ok()) {
      return c.WithContext("commit shard " + std::to_string(s.shard->id()));
    } else {
      progress_.committed.push_back(s.shard->id());
    }
    it = held_.erase(it);
  }
  return Status::Ok();
}

void DataFeed::Restore(const CursorTable& cursors) {
  cursors_ = cursors;
  progress_.applied.clear();
  for (auto it = held_.begin(); it != held_.end();) {
    if ((*it)->shard->lost()) {
      spdlog::warn("shard {}: lease lost; dropping it", (*it)->shard->id());
      it = held_.erase(it);
      continue;
    }
    auto c = cursors_.find((*it)->shard->id());
    StartAt(**it, c == cursors_.end() ? nullptr : &c->second);
    ++it;
  }
}

const DataFeed::Progress& DataFeed::progress() {
  progress_.held.clear();
  for (const auto& s : held_) {
    if (s->cursor.applied > 0 || s->cursor.complete_at >= 0) {
      progress_.held.emplace_back(s->shard->id(), s->cursor);
    }
  }
  return progress_;
}

void DataFeed::ProgressRecorded() {
  progress_.committed.clear();
  progress_.applied.clear();
}

size_t DataFeed::lost() const {
  return static_cast<size_t>(std::count_if(held_.begin(), held_.end(), [](const auto& s) {
    return s->shard->lost() && s->next > s->started_at;
  }));
}

}  // namespace baton::train
