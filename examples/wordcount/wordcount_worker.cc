// wordcount: the smallest real baton worker. For each leased shard it counts the words of the
// shard's lines and commits one part file of "word<TAB>count" lines, sorted by word.
//
// Environment knobs for tests and demos (defaults: off):
//   WORDCOUNT_DELAY_US_PER_RECORD  sleep this long per record (stands in for real per-record work)
//   WORDCOUNT_SLOW_RANK            the worker with this global rank is slower...
//   WORDCOUNT_SLOW_FACTOR          ...by this factor, to play a straggler.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <unordered_map>

#include "sdk/worker.h"

using baton::Status;
using baton::StatusCode;

namespace {

void CountWords(std::string_view line, std::unordered_map<std::string, uint64_t>& counts) {
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) ++counts[std::string(line.substr(start, i - start))];
  }
}

}  // namespace

int main() {
  auto identity = baton::sdk::WorkerIdentity::FromEnvironment();
  if (!identity.ok()) {
    spdlog::error("{}", identity.status().message());
    return 2;
  }
  spdlog::set_pattern("[%H:%M:%S.%e] [wordcount " + identity->worker_id + "] %v");
  int64_t delay_us = 0;
  if (const char* d = std::getenv("WORDCOUNT_DELAY_US_PER_RECORD")) delay_us = std::atoll(d);
  const char* slow_rank = std::getenv("WORDCOUNT_SLOW_RANK");
  const char* slow_factor = std::getenv("WORDCOUNT_SLOW_FACTOR");
  if (slow_rank && slow_factor && std::atoi(slow_rank) == identity->global_rank) {
    delay_us *= std::max(1, std::atoi(slow_factor));
  }

  auto worker = baton::sdk::Worker::Connect(*identity);
  if (!worker.ok()) {
    spdlog::error("{}", worker.status().ToString());
    return 1;
  }
  uint64_t shards = 0;
  while (true) {
    auto next = (*worker)->NextShard();
    if (!next.ok()) {
      spdlog::error("{}", next.status().ToString());
      return 1;
    }
    if (!*next) break;
    baton::sdk::Shard& shard = **next;
    std::unordered_map<std::string, uint64_t> counts;
    Status s = shard.ForEachRecord([&](std::string_view line) {
      CountWords(line, counts);
      if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      return Status::Ok();
    });
    if (!s.ok()) {
      (void)(*worker)->Fail(shard, s.ToString());
      continue;
    }
    std::map<std::string_view, uint64_t> sorted(counts.begin(), counts.end());
    std::string out;
    for (const auto& [word, n] : sorted) {
      out.append(word);
      out.push_back('\t');
      out.append(std::to_string(n));
      out.push_back('\n');
    }
    if (!out.empty()) s = shard.Write(out);
    if (!s.ok()) {
      // The output cannot be written (e.g. a full disk): hand the shard back with the cause.
      (void)(*worker)->Fail(shard, s.message());
      spdlog::error("shard {}: {}", shard.id(), s.ToString());
      return 1;
    }
    s = (*worker)->Commit(shard);
    if (s.code() == StatusCode::kFenced) {
      spdlog::warn("shard {} was taken over by another worker; dropping it", shard.id());
      continue;
    }
    if (!s.ok()) {
      spdlog::error("shard {}: {}", shard.id(), s.ToString());
      return 1;
    }
    ++shards;
  }
  spdlog::info("no more work after {} shard(s)", shards);
  return 0;
}
