// A data-parallel wordcount for the rendezvous tests: every worker leases shards from the DDS like
// wordcount does, and after each shard takes part in an all-reduce with the other members of its
// rendezvous generation, over a gloo process group bootstrapped through the master's KV store.
// When a collective fails (a peer died) or its generation watch sees that the master ended the
// generation (a scale-up), it joins the next one.
//
// It appends one line per step to RDZV_LOG_DIR/<node>_<local>.log:
//   step gen=G rank=R size=S sum=X          (X: the all-reduced count of members, must equal S)
//   ended gen=G reason=...                  (why the generation it left ended)
// and writes its pid to RDZV_LOG_DIR/<node>_<local>.pid so that a test can kill it.
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "comm/process_group.h"
#include "sdk/rendezvous.h"
#include "sdk/worker.h"

using baton::Status;
namespace comm = baton::comm;
namespace sdk = baton::sdk;

namespace {

std::string FileStem(const sdk::WorkerIdentity& id) {
  return id.node_id + "_" + std::to_string(id.local_rank);
}

// Forms the group of the next generation; retries while generations end under it.
std::unique_ptr<comm::ProcessGroup> FormGroup(sdk::Rendezvous& rdzv, sdk::Generation* gen,
                                              std::unique_ptr<sdk::GenerationWatch>* watch,
                                              std::ofstream& log) {
  watch->reset();
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (gen->id > 0) {
      auto reason = rdzv.EndReason();
      log << "ended gen=" << gen->id << " reason=" << (reason.ok() ? *reason : "?") << std::endl;
    }
    auto next = rdzv.Join(std::chrono::minutes(5));
    if (!next.ok()) {
      spdlog::error("join: {}", next.status().ToString());
      return nullptr;
    }
    *gen = *next;
    comm::GroupOptions o;
    o.prefix = "dp";
    o.rank = gen->rank;
    o.size = gen->size();
    o.timeout = std::chrono::seconds(20);
    auto group = comm::ProcessGroup::Create(rdzv.Store(gen->id), o);
    if (group.ok()) {
      *watch = rdzv.Watch(gen->id, std::chrono::milliseconds(100));
      return std::move(*group);
    }
    spdlog::warn("generation {}: forming the group failed: {}", gen->id, group.status().ToString());
  }
  return nullptr;
}

}  // namespace

int main() {
  auto identity = sdk::WorkerIdentity::FromEnvironment();
  if (!identity.ok()) {
    spdlog::error("{}", identity.status().message());
    return 2;
  }
  spdlog::set_pattern("[%H:%M:%S.%e] [rdzv " + identity->worker_id + "] %v");
  const char* dir = std::getenv("RDZV_LOG_DIR");
  if (dir == nullptr) {
    spdlog::error("RDZV_LOG_DIR is not set");
    return 2;
  }
  const std::string stem = std::string(dir) + "/" + FileStem(*identity);
  std::ofstream(stem + ".pid") << ::getpid() << "\n";
  std::ofstream log(stem + ".log", std::ios::app);
  int64_t delay_us = 0;
  if (const char* d = std::getenv("WORDCOUNT_DELAY_US_PER_RECORD")) delay_us = std::atoll(d);

  auto worker = sdk::Worker::Connect(*identity);
  auto rdzv = sdk::Rendezvous::Connect(*identity);
  if (!worker.ok() || !rdzv.ok()) {
    spdlog::error("connect: {}", (worker.ok() ? rdzv.status() : worker.status()).ToString());
    return 1;
  }
  sdk::Generation gen;
  std::unique_ptr<sdk::GenerationWatch> watch;
  std::unique_ptr<comm::ProcessGroup> group = FormGroup(**rdzv, &gen, &watch, log);
  if (!group) return 1;
  while (true) {
    auto next = (*worker)->NextShard();
    if (!next.ok()) {
      spdlog::error("{}", next.status().ToString());
      return 1;
    }
    if (!*next) break;
    sdk::Shard& shard = **next;
    std::unordered_map<std::string, uint64_t> counts;
    Status s = shard.ForEachRecord([&](std::string_view line) {
      size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && line[i] == ' ') ++i;
        size_t start = i;
        while (i < line.size() && line[i] != ' ') ++i;
        if (i > start) ++counts[std::string(line.substr(start, i - start))];
      }
      if (delay_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      return Status::Ok();
    });
    if (!s.ok()) {
      (void)(*worker)->Fail(shard, s.ToString());
      continue;
    }
    std::map<std::string, uint64_t> sorted(counts.begin(), counts.end());
    std::string out;
    for (const auto& [word, n] : sorted) out += word + "\t" + std::to_string(n) + "\n";
    if (Status w = shard.Write(out); !w.ok()) {
      (void)(*worker)->Fail(shard, w.ToString());
      continue;
    }
    Status c = (*worker)->Commit(shard);
    if (!c.ok() && c.code() != baton::StatusCode::kFenced) {
      spdlog::error("commit: {}", c.ToString());
      return 1;
    }
    // One synchronous step with the generation; a broken one is replaced and the step retried.
    while (true) {
      int64_t members = 1;
      // A generation the master ended (scale, a new worker) is left even if it still works.
      Status r = watch->ended()
                     ? Status::FailedPrecondition("the master ended the generation")
                     : group->AllReduce(&members, 1, comm::DataType::kInt64, comm::ReduceOp::kSum);
      if (r.ok()) {
        log << "step gen=" << gen.id << " rank=" << gen.rank << " size=" << gen.size()
            << " sum=" << members << std::endl;
        break;
      }
      spdlog::info("generation {}: all-reduce failed ({}); joining the next", gen.id, r.ToString());
      group.reset();
      group = FormGroup(**rdzv, &gen, &watch, log);
      if (!group) return 1;
    }
  }
  return 0;
}
