// comm_bench: bus bandwidth of allreduce, reduce-scatter and all-gather against message size, with
// HO-Ring, baton's flat ring and gloo's built-in ring side by side in one run.
//
//   comm_bench loopback --ranks W [flags]        W ranks on 127.0.0.1 (one node)
//   comm_bench node --nodes N --per-node M [...]  one emulated node (run by tools/netem/netem.sh):
//                                                 spawns its M ranks bound to $BATON_NETEM_ADDR
//   comm_bench rank ...                           one rank (spawned by the two above)
// Flags: --store DIR (shared by all ranks; required for `node`), --quick (three sizes, fewer
// iterations), --min-bytes B, --max-bytes B, --link-mbit R (inter-node link rate, for
// busbw_fraction),
// --pipeline-chunk B (HO-Ring's pipeline chunk; default HierarchicalOptions').
//
// Rank 0 prints one `key=value` line per (collective, size). Times are the slowest rank's mean per
// call over `iters` calls, best of 4 interleaved rounds (3 with --quick). busbw follows nccl-tests:
// allreduce algbw * 2(n-1)/n, reduce-scatter and all-gather algbw * (n-1)/n, with algbw = message
// bytes / time. gloo has no reduce-scatter in Debian's build, so its reduce-scatter column is
// gloo's allreduce (what a gloo user would run instead).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "comm/file_store.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "comm/topology.h"

extern char** environ;

namespace baton::comm {
namespace {

struct Flags {
  std::string role, store, addr = "127.0.0.1";
  int rank = 0, size = 1, nodes = 1, per_node = 1;
  bool quick = false;
  size_t min_bytes = 0, max_bytes = 256u << 20;
  double link_mbit = 0;  // 0: not shaped (loopback)
  size_t pipeline_chunk = HierarchicalOptions{}.pipeline_chunk_bytes;
  std::string label;
};

std::vector<std::string> RankArgv(const Flags& f, const std::string& self, int rank, int size) {
  const std::pair<const char*, std::string> flags[] = {
      {"--store", f.store},
      {"--rank", std::to_string(rank)},
      {"--size", std::to_string(size)},
      {"--nodes", std::to_string(f.nodes)},
      {"--per-node", std::to_string(f.per_node)},
      {"--addr", f.addr},
      {"--min-bytes", std::to_string(f.min_bytes)},
      {"--max-bytes", std::to_string(f.max_bytes)},
      {"--link-mbit", std::to_string(f.link_mbit)},
      {"--label", f.label},
      {"--pipeline-chunk", std::to_string(f.pipeline_chunk)},
  };
  std::vector<std::string> a = {self, "rank"};
  for (const auto& [flag, value] : flags) {
    a.push_back(flag);
    a.push_back(value);
  }
  if (f.quick) a.push_back("--quick");
  return a;
}

int SpawnAndWait(const std::vector<std::vector<std::string>>& argvs) {
  std::vector<pid_t> pids;
  for (const auto& argv : argvs) {
    std::vector<char*> args;
    for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    pid_t pid;
    if (::posix_spawn(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return 1;
    pids.push_back(pid);
  }
  int rc = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) rc = 1;
  }
  return rc;
}

std::string Self() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

void Die(const Status& s, const char* what) {
  if (s.ok()) return;
  std::fprintf(stderr, "comm_bench: %s: %s\n", what, s.ToString().c_str());
  std::exit(1);
}

int RunRank(const Flags& f) {
  auto store = FileStore::Open(f.store);
  Die(store.status(), "store");
  GroupOptions o;
  o.prefix = "bench";
  o.rank = f.rank;
  o.size = f.size;
  o.address = f.addr;
  o.timeout = std::chrono::seconds(600);
  auto world_or = ProcessGroup::Create(std::shared_ptr<Store>(std::move(*store)), o);
  Die(world_or.status(), "forming the group");
  ProcessGroup& world = **world_or;
  HierarchicalOptions hopts;
  hopts.pipeline_chunk_bytes = f.pipeline_chunk;
  auto hring_or = HierarchicalRing::Create(world, Topology::Uniform(f.nodes, f.per_node), hopts);
  Die(hring_or.status(), "forming HO-Ring subgroups");
  HierarchicalRing& hring = **hring_or;
  const bool multi_node = f.nodes > 1 && f.per_node > 1;
  const double n = f.size;

  std::vector<size_t> sizes;
  if (f.quick) {
    sizes = {1u << 10, 1u << 20, 16u << 20};
  } else {
    for (size_t b = 1u << 10; b <= (256u << 20); b *= 4) sizes.push_back(b);
  }
  sizes.erase(std::remove_if(sizes.begin(), sizes.end(),
                             [&](size_t b) { return b < f.min_bytes || b > f.max_bytes; }),
              sizes.end());

  using Op = std::function<Status()>;
  // Mean seconds per call of the slowest rank.
  auto measure = [&](const Op& op, int iters, bool warm_up) {
    if (warm_up) Die(op(), "warm-up call");
    Die(world.Barrier(), "barrier");
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) Die(op(), "timed call");
    double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
    Die(world.AllReduce(&t, 1, DataType::kFloat64, ReduceOp::kMax), "timing reduction");
    return t;
  };

  const CallOptions ring_call{{}, Algorithm::kRing}, gloo_call{{}, Algorithm::kGloo};
  for (const char* coll : {"allreduce", "reduce_scatter", "all_gather"}) {
    const std::string c = coll;
    for (size_t bytes : sizes) {
      const size_t count = std::max<size_t>(bytes / 4, static_cast<size_t>(f.size));
      const size_t per_rank = count / static_cast<size_t>(f.size);
      const size_t msg = (c == "allreduce" ? count : per_rank * static_cast<size_t>(f.size)) * 4;
      // Zeros keep sums from growing across iterations; the arithmetic costs the same.
      std::vector<float> buf(count, 0.0f), out(count, 0.0f);
      // At least 2 calls per round and 3+ rounds: single calls on this shared host vary by 2x.
      const int iters = static_cast<int>(std::clamp<size_t>((64u << 20) / bytes, 2, 20));
      const int rounds = f.quick ? 3 : 4;
      auto run = [&](int algo) -> Op {  // 0 ring, 1 gloo, 2 hring
        const CallOptions& call = algo == 1 ? gloo_call : ring_call;
        if (c == "allreduce") {
          if (algo == 2)
            return [&] {
              return hring.AllReduce(buf.data(), count, DataType::kFloat32, ReduceOp::kSum);
            };
          return [&, call] {
            return world.AllReduce(buf.data(), count, DataType::kFloat32, ReduceOp::kSum, call);
          };
        }
        if (c == "reduce_scatter") {
          if (algo == 2)
            return [&] {
              return hring.ReduceScatter(buf.data(), out.data(), count, DataType::kFloat32,
                                         ReduceOp::kSum);
            };
          return [&, call] {
            return world.ReduceScatter(buf.data(), out.data(), count, DataType::kFloat32,
                                       ReduceOp::kSum, call);
          };
        }
        if (algo == 2)
          return
              [&] { return hring.AllGather(buf.data(), out.data(), per_rank, DataType::kFloat32); };
        return [&, call] {
          return world.AllGather(buf.data(), out.data(), per_rank, DataType::kFloat32, call);
        };
      };
      // Rounds interleave the algorithms and keep each one's best round, so that load from other
      // processes on the host (the bench shares its cores) penalises none of them systematically.
      double t_ring = 1e30, t_gloo = 1e30, t_hring = 1e30;
      for (int round = 0; round < rounds; ++round) {
        t_ring = std::min(t_ring, measure(run(0), iters, round == 0));
        t_gloo = std::min(t_gloo, measure(run(1), iters, round == 0));
        if (multi_node) t_hring = std::min(t_hring, measure(run(2), iters, round == 0));
      }
      if (world.rank() != 0) continue;
      const double factor = (c == "allreduce" ? 2 : 1) * (n - 1) / n;
      auto busbw = [&](double t) { return msg / t * factor / 1e6; };  // MB/s
      std::printf("comm config=%s coll=%s bytes=%zu iters=%d ring_ms=%.3f gloo_ms=%.3f",
                  f.label.c_str(), coll, msg, iters, t_ring * 1e3, t_gloo * 1e3);
      if (multi_node) std::printf(" hring_ms=%.3f", t_hring * 1e3);
      std::printf(" ring_busbw_MBps=%.1f gloo_busbw_MBps=%.1f", busbw(t_ring), busbw(t_gloo));
      if (multi_node) std::printf(" hring_busbw_MBps=%.1f", busbw(t_hring));
      std::printf(" ring_vs_gloo=%.3f", t_gloo / t_ring);
      if (multi_node) std::printf(" hring_vs_ring=%.3f", t_ring / t_hring);
      if (f.link_mbit > 0) {
        const double link = f.link_mbit / 8;  // MB/s
        std::printf(" busbw_fraction=%.3f", busbw(t_ring) / link);
        if (multi_node) std::printf(" hring_busbw_fraction=%.3f", busbw(t_hring) / link);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace baton::comm

int main(int argc, char** argv) {
  using baton::comm::Flags;
  Flags f;
  if (argc < 2) {
    std::fprintf(stderr, "usage: comm_bench loopback|node|rank [flags]\n");
    return 2;
  }
  f.role = argv[1];
  int ranks = 4;
  for (int i = 2; i < argc; ++i) {
    std::string k = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (k == "--quick")
      f.quick = true;
    else if (k == "--store")
      f.store = next();
    else if (k == "--rank")
      f.rank = std::atoi(next().c_str());
    else if (k == "--size")
      f.size = std::atoi(next().c_str());
    else if (k == "--ranks")
      ranks = std::atoi(next().c_str());
    else if (k == "--nodes")
      f.nodes = std::atoi(next().c_str());
    else if (k == "--per-node")
      f.per_node = std::atoi(next().c_str());
    else if (k == "--addr")
      f.addr = next();
    else if (k == "--min-bytes")
      f.min_bytes = std::strtoull(next().c_str(), nullptr, 10);
    else if (k == "--max-bytes")
      f.max_bytes = std::strtoull(next().c_str(), nullptr, 10);
    else if (k == "--link-mbit")
      f.link_mbit = std::atof(next().c_str());
    else if (k == "--pipeline-chunk")
      f.pipeline_chunk = std::strtoull(next().c_str(), nullptr, 10);
    else if (k == "--label")
      f.label = next();
    else {
      std::fprintf(stderr, "comm_bench: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (f.role == "rank") return baton::comm::RunRank(f);
  std::string tmp;
  if (f.store.empty()) {
    char tmpl[] = "/tmp/comm-bench-XXXXXX";
    tmp = f.store = ::mkdtemp(tmpl);
  }
  std::vector<std::vector<std::string>> argvs;
  const std::string self = baton::comm::Self();
  if (f.role == "loopback") {
    f.nodes = 1;
    f.per_node = ranks;
    if (f.label.empty()) f.label = "loopback-" + std::to_string(ranks);
    for (int r = 0; r < ranks; ++r) argvs.push_back(baton::comm::RankArgv(f, self, r, ranks));
  } else if (f.role == "node") {
    const char* node = std::getenv("BATON_NETEM_NODE");
    const char* addr = std::getenv("BATON_NETEM_ADDR");
    if (node == nullptr || addr == nullptr || tmp.size() > 0) {
      std::fprintf(stderr, "comm_bench node: run under tools/netem/netem.sh with --store\n");
      return 2;
    }
    f.addr = addr;
    if (f.label.empty()) f.label = std::to_string(f.nodes) + "x" + std::to_string(f.per_node);
    for (int l = 0; l < f.per_node; ++l) {
      const int r = std::atoi(node) * f.per_node + l;
      argvs.push_back(baton::comm::RankArgv(f, self, r, f.nodes * f.per_node));
    }
  } else {
    std::fprintf(stderr, "comm_bench: unknown role %s\n", f.role.c_str());
    return 2;
  }
  int rc = baton::comm::SpawnAndWait(argvs);
  if (!tmp.empty()) std::system(("rm -rf " + tmp).c_str());
  return rc;
}
