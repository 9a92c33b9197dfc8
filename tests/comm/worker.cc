// comm_test_worker: one rank of a multi-process comm test. The gtest driver (comm_test.cc) spawns
// `size` of these on loopback; each checks its own results against a locally computed reference
// and exits 0 only if everything matched. Modes:
//   collectives  every collective x dtype (float32, float64, int64, bfloat16) x size x algorithm
//                against the reference
//   hring        HO-Ring (nodes x per_node topology) against the flat ring
//   interface    the same calls through Collectives& on ProcessGroup and HierarchicalRing
//   kill         loops allreduce until a peer is SIGKILLed, then re-forms a smaller generation
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "comm/bfloat16.h"
#include "comm/collectives.h"
#include "comm/file_store.h"
#include "comm/generation.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "comm/shm_group.h"
#include "comm/topology.h"

namespace baton::comm {
namespace {

struct Args {
  std::string mode, store;
  int rank = 0, size = 1, nodes = 1, per_node = 1;
};

int failures = 0;

#define EXPECT_OK(expr)                                                                       \
  do {                                                                                        \
    ::baton::Status s_ = (expr);                                                              \
    if (!s_.ok()) {                                                                           \
      std::fprintf(stderr, "rank %d: %s failed: %s\n", g_rank, #expr, s_.ToString().c_str()); \
      std::exit(2);                                                                           \
    }                                                                                         \
  } while (0)

int g_rank = 0;

// Small integers (exact in every dtype, so sums are exact), negative too so max/min matter.
int64_t Value(int rank, size_t i) { return static_cast<int64_t>((rank * 7 + i * 3) % 11) - 5; }

template <typename T>
std::vector<T> Input(int rank, size_t n, size_t shift = 0) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(Value(rank, i + shift));
  return v;
}

template <typename T>
std::vector<T> Reference(int size, size_t n, ReduceOp op) {
  std::vector<T> out = Input<T>(0, n);
  for (int r = 1; r < size; ++r) {
    auto in = Input<T>(r, n);
    for (size_t i = 0; i < n; ++i) {
      if (op == ReduceOp::kMax)
        out[i] = std::max(out[i], in[i]);
      else if (op == ReduceOp::kMin)
        out[i] = std::min(out[i], in[i]);
      else
        out[i] += in[i];
    }
  }
  if (op == ReduceOp::kAvg) {
    for (auto& x : out) x /= static_cast<T>(size);
  }
  return out;
}

template <typename T>
void Check(const std::vector<T>& got, const std::vector<T>& want, const std::string& what) {
  if (got.size() != want.size()) {
    std::fprintf(stderr, "rank %d: %s: size %zu want %zu\n", g_rank, what.c_str(), got.size(),
                 want.size());
    ++failures;
    return;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      std::fprintf(stderr, "rank %d: %s: [%zu] = %g want %g\n", g_rank, what.c_str(), i,
                   static_cast<double>(got[i]), static_cast<double>(want[i]));
      ++failures;
      return;
    }
  }
}

// bf16 as the reference sees it: arithmetic in float, rounded back to nearest-even after each
// operation, as the kernels do. The test values are small integers, so sums are exact; avg rounds
// the same quotient DivideBy does.
struct BF16 {
  uint16_t bits = 0;
  BF16() = default;
  explicit BF16(double v) : bits(FloatToBFloat16(static_cast<float>(v))) {}
  explicit operator double() const { return BFloat16ToFloat(bits); }
  float f() const { return BFloat16ToFloat(bits); }
  BF16& operator+=(BF16 o) {
    bits = FloatToBFloat16(f() + o.f());
    return *this;
  }
  BF16& operator/=(BF16 o) {
    bits = FloatToBFloat16(f() / o.f());
    return *this;
  }
  bool operator<(BF16 o) const { return f() < o.f(); }
  bool operator!=(BF16 o) const { return bits != o.bits; }
};
static_assert(sizeof(BF16) == 2);

template <typename T>
DataType TypeOf();
template <>
DataType TypeOf<float>() {
  return DataType::kFloat32;
}
template <>
DataType TypeOf<double>() {
  return DataType::kFloat64;
}
template <>
DataType TypeOf<int64_t>() {
  return DataType::kInt64;
}
template <>
DataType TypeOf<BF16>() {
  return DataType::kBFloat16;
}

std::string Name(const char* op, DataType t, size_t n, Algorithm a, ReduceOp r = ReduceOp::kSum) {
  return std::string(op) + "/" + std::string(DataTypeName(t)) + "/n=" + std::to_string(n) + "/" +
         (a == Algorithm::kGloo     ? "gloo"
          : a == Algorithm::kDirect ? "direct"
                                    : "ring") +
         "/" + std::string(ReduceOpName(r));
}

template <typename T>
void RunCollectives(ProcessGroup& pg, const std::vector<size_t>& sizes, bool reductions_only) {
  const DataType t = TypeOf<T>();
  const int me = pg.rank(), p = pg.size();
  for (size_t n : sizes) {
    for (Algorithm a : {Algorithm::kRing, Algorithm::kGloo, Algorithm::kDirect}) {
      CallOptions call{{}, a};
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
        auto buf = Input<T>(me, n);
        EXPECT_OK(pg.AllReduce(buf.data(), n, t, op, call));
        Check(buf, Reference<T>(p, n, op), Name("allreduce", t, n, a, op));
      }
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMin}) {
        auto in = Input<T>(me, n);
        const Block mine = Partition(n, p)[static_cast<size_t>(me)];
        std::vector<T> out(mine.count);
        EXPECT_OK(pg.ReduceScatter(in.data(), out.data(), n, t, op, call));
        auto ref = Reference<T>(p, n, op);
        Check(out,
              std::vector<T>(ref.begin() + mine.offset, ref.begin() + mine.offset + mine.count),
              Name("reduce_scatter", t, n, a, op));
      }
      {
        auto in = Input<T>(me, n);
        std::vector<T> out(n * p), want;
        EXPECT_OK(pg.AllGather(in.data(), out.data(), n, t, call));
        for (int r = 0; r < p; ++r) {
          auto x = Input<T>(r, n);
          want.insert(want.end(), x.begin(), x.end());
        }
        Check(out, want, Name("all_gather", t, n, a));
      }
    }
    if (reductions_only) continue;
    {
      auto buf = me == p - 1 ? Input<T>(p - 1, n) : std::vector<T>(n, T(0));
      EXPECT_OK(pg.Broadcast(buf.data(), n, t, p - 1));
      Check(buf, Input<T>(p - 1, n), Name("broadcast", t, n, Algorithm::kGloo));
    }
    {
      // Run j of rank r carries Input(r, n, j * n); rank j receives it as run r.
      auto in = Input<T>(me, n * p);
      std::vector<T> out(n * p), want;
      EXPECT_OK(pg.AllToAll(in.data(), out.data(), n, t));
      for (int r = 0; r < p; ++r) {
        auto x = Input<T>(r, n, static_cast<size_t>(me) * n);
        want.insert(want.end(), x.begin(), x.end());
      }
      Check(out, want, Name("all_to_all", t, n, Algorithm::kGloo));
    }
    {
      // Rank r sends (n + r + j) % 4 elements to rank j, starting at shift 100 * j.
      auto cnt = [&](int from, int to) { return (n + static_cast<size_t>(from + to)) % 4; };
      std::vector<size_t> sc(static_cast<size_t>(p)), rc(static_cast<size_t>(p));
      std::vector<T> in, want;
      for (int j = 0; j < p; ++j) {
        sc[static_cast<size_t>(j)] = cnt(me, j);
        rc[static_cast<size_t>(j)] = cnt(j, me);
        auto x = Input<T>(me, cnt(me, j), 100 * static_cast<size_t>(j));
        in.insert(in.end(), x.begin(), x.end());
        auto y = Input<T>(j, cnt(j, me), 100 * static_cast<size_t>(me));
        want.insert(want.end(), y.begin(), y.end());
      }
      std::vector<T> out(want.size());
      EXPECT_OK(pg.AllToAllV(in.data(), sc, out.data(), rc, t));
      Check(out, want, Name("all_to_all_v", t, n, Algorithm::kRing));
    }
    if (p > 1) {
      // A ring of sends: each rank sends to its right neighbour and receives from its left.
      auto out = Input<T>(me, n);
      std::vector<T> in(n);
      const int right = (me + 1) % p, left = (me + p - 1) % p;
      if (me % 2 == 0) {
        EXPECT_OK(pg.Send(out.data(), n, t, right, 7));
        EXPECT_OK(pg.Recv(in.data(), n, t, left, 7));
      } else {
        EXPECT_OK(pg.Recv(in.data(), n, t, left, 7));
        EXPECT_OK(pg.Send(out.data(), n, t, right, 7));
      }
      Check(in, Input<T>(left, n), Name("send_recv", t, n, Algorithm::kRing));
    }
  }
  EXPECT_OK(pg.Barrier());
}

std::shared_ptr<Store> OpenStore(const std::string& dir) {
  auto s = FileStore::Open(dir);
  if (!s.ok()) {
    std::fprintf(stderr, "store: %s\n", s.status().ToString().c_str());
    std::exit(2);
  }
  return std::shared_ptr<Store>(std::move(*s));
}

std::unique_ptr<ProcessGroup> Form(std::shared_ptr<Store> store, const std::string& prefix,
                                   int rank, int size, std::chrono::milliseconds timeout) {
  GroupOptions o;
  o.prefix = prefix;
  o.rank = rank;
  o.size = size;
  o.timeout = timeout;
  // Under tools/netem/netem.sh each node has its own address; elsewhere loopback.
  if (const char* addr = std::getenv("BATON_NETEM_ADDR")) o.address = addr;
  auto pg = ProcessGroup::Create(std::move(store), o);
  if (!pg.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", rank, pg.status().ToString().c_str());
    std::exit(2);
  }
  return std::move(*pg);
}

int CollectivesMode(const Args& a) {
  auto pg = Form(OpenStore(a.store), "collectives", a.rank, a.size, std::chrono::seconds(60));
  const std::vector<size_t> sizes = {0, 1, 7, 1000};
  RunCollectives<float>(*pg, sizes, false);
  RunCollectives<double>(*pg, sizes, false);
  RunCollectives<int64_t>(*pg, sizes, false);
  RunCollectives<BF16>(*pg, sizes, false);
  // 3 MiB: blocks of several 1 MiB ring segments for small groups; not divisible by most sizes.
  RunCollectives<double>(*pg, {(3u << 20) / 8 + 5}, true);
  return failures == 0 ? 0 : 1;
}

template <typename T>
void CompareHierarchical(HierarchicalRing& h, size_t n) {
  ProcessGroup& pg = h.world();
  const DataType t = TypeOf<T>();
  const int me = pg.rank(), p = pg.size();
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
    auto flat = Input<T>(me, n), hier = Input<T>(me, n);
    EXPECT_OK(pg.AllReduce(flat.data(), n, t, op));
    EXPECT_OK(h.AllReduce(hier.data(), n, t, op));
    Check(hier, flat, Name("hring_allreduce", t, n, Algorithm::kRing, op));
    Check(flat, Reference<T>(p, n, op), Name("flat_allreduce", t, n, Algorithm::kRing, op));
  }
  {
    auto in = Input<T>(me, n);
    const Block mine = Partition(n, p)[static_cast<size_t>(me)];
    std::vector<T> flat(mine.count), hier(mine.count);
    EXPECT_OK(pg.ReduceScatter(in.data(), flat.data(), n, t, ReduceOp::kSum));
    EXPECT_OK(h.ReduceScatter(in.data(), hier.data(), n, t, ReduceOp::kSum));
    Check(hier, flat, Name("hring_reduce_scatter", t, n, Algorithm::kRing));
  }
  {
    auto in = Input<T>(me, n);
    std::vector<T> flat(n * p), hier(n * p);
    EXPECT_OK(pg.AllGather(in.data(), flat.data(), n, t));
    EXPECT_OK(h.AllGather(in.data(), hier.data(), n, t));
    Check(hier, flat, Name("hring_all_gather", t, n, Algorithm::kRing));
  }
}

int Hring(const Args& a) {
  auto pg = Form(OpenStore(a.store), "hring", a.rank, a.size, std::chrono::seconds(60));
  // Threshold 0 so that every size takes the hierarchical path; small pipeline chunks so that a
  // few thousand elements already span several chunks.
  HierarchicalOptions opts;
  opts.threshold_bytes = 0;
  opts.pipeline_chunk_bytes = 1000;
  auto h = HierarchicalRing::Create(*pg, Topology::Uniform(a.nodes, a.per_node), opts);
  EXPECT_OK(h.status());
  if (!(*h)->Eligible(1)) {
    std::fprintf(stderr, "rank %d: topology %dx%d not eligible\n", a.rank, a.nodes, a.per_node);
    return 1;
  }
  for (size_t n : {size_t{1}, size_t{7}, size_t{1000}, size_t{4099}}) {
    CompareHierarchical<float>(**h, n);
    CompareHierarchical<double>(**h, n);
    CompareHierarchical<int64_t>(**h, n);
    CompareHierarchical<BF16>(**h, n);
  }
  // Variants of the same topology, each its own subgroups (`name`).
  auto variant = [&](const char* name, auto&& tweak) {
    HierarchicalOptions o = opts;
    o.name = name;
    tweak(o);
    auto h = HierarchicalRing::Create(*pg, Topology::Uniform(a.nodes, a.per_node), o);
    EXPECT_OK(h.status());
    return std::move(*h);
  };
  // The paper's sequential phases.
  CompareHierarchical<float>(*variant("unpipelined", [](auto& o) { o.pipeline_chunk_bytes = 0; }),
                             1001);
  // Rings inside the nodes too (the default is shared memory).
  auto ring = variant("intra_ring", [](auto& o) { o.intra_node = IntraNode::kRing; });
  CompareHierarchical<float>(*ring, 4099);
  CompareHierarchical<int64_t>(*ring, 7);
  // Sockets, one step, inside the node.
  CompareHierarchical<float>(
      *variant("intra_direct", [](auto& o) { o.intra_node = IntraNode::kDirect; }), 4099);
  // Shared memory with slots so small that every call takes several rounds (both halves).
  auto small = variant("small_slots", [](auto& o) { o.shm_slot_bytes = 4096; });
  CompareHierarchical<double>(*small, 20011);
  CompareHierarchical<BF16>(*small, 4099);
  return failures == 0 ? 0 : 1;
}

// What one sequence of calls through the interface produced on this rank.
struct InterfaceResults {
  int rank = -1, size = -1;
  std::vector<float> allreduce, reduce_scatter, all_gather, broadcast;
};

// Knows the implementation only as Collectives&: what training code will do.
InterfaceResults RunThroughInterface(Collectives& c, size_t n) {
  const DataType t = DataType::kFloat32;
  InterfaceResults r;
  r.rank = c.rank();
  r.size = c.size();
  EXPECT_OK(c.Barrier());
  r.allreduce = Input<float>(r.rank, n);
  EXPECT_OK(c.AllReduce(r.allreduce.data(), n, t, ReduceOp::kSum));
  const auto in = Input<float>(r.rank, n);
  r.reduce_scatter.resize(Partition(n, r.size)[static_cast<size_t>(r.rank)].count);
  EXPECT_OK(c.ReduceScatter(in.data(), r.reduce_scatter.data(), n, t, ReduceOp::kSum));
  r.all_gather.resize(n * static_cast<size_t>(r.size));
  EXPECT_OK(c.AllGather(in.data(), r.all_gather.data(), n, t));
  r.broadcast = Input<float>(r.rank, n);
  EXPECT_OK(c.Broadcast(r.broadcast.data(), n, t, /*root=*/r.size - 1));
  EXPECT_OK(c.Barrier());
  return r;
}

int Interface(const Args& a) {
  auto pg = Form(OpenStore(a.store), "interface", a.rank, a.size, std::chrono::seconds(60));
  HierarchicalOptions opts;
  opts.threshold_bytes = 0;  // every size takes the hierarchical path
  auto h = HierarchicalRing::Create(*pg, Topology::Uniform(a.nodes, a.per_node), opts);
  EXPECT_OK(h.status());
  if (!(*h)->Eligible(1)) {
    std::fprintf(stderr, "rank %d: topology %dx%d not eligible\n", a.rank, a.nodes, a.per_node);
    return 1;
  }
  for (size_t n : {size_t{1}, size_t{1000}, size_t{4099}}) {
    const InterfaceResults flat = RunThroughInterface(*pg, n);
    const InterfaceResults hier = RunThroughInterface(**h, n);
    if (flat.rank != a.rank || hier.rank != a.rank || flat.size != a.size || hier.size != a.size) {
      std::fprintf(stderr, "rank %d: rank/size through the interface: flat %d/%d, hring %d/%d\n",
                   a.rank, flat.rank, flat.size, hier.rank, hier.size);
      ++failures;
    }
    const std::string sfx = "/" + std::to_string(n);
    Check(hier.allreduce, flat.allreduce, "interface allreduce hring vs flat" + sfx);
    Check(flat.allreduce, Reference<float>(a.size, n, ReduceOp::kSum),
          "interface allreduce vs reference" + sfx);
    Check(hier.reduce_scatter, flat.reduce_scatter, "interface reduce_scatter hring vs flat" + sfx);
    Check(hier.all_gather, flat.all_gather, "interface all_gather hring vs flat" + sfx);
    Check(hier.broadcast, flat.broadcast, "interface broadcast hring vs flat" + sfx);
    Check(flat.broadcast, Input<float>(a.size - 1, n), "interface broadcast vs root's" + sfx);
  }
  return failures == 0 ? 0 : 1;
}

int Kill(const Args& a) {
  auto store = OpenStore(a.store);
  const auto timeout = std::chrono::seconds(5);
  auto pg = Form(store, GenerationPrefix("kill", 0), a.rank, a.size, timeout);
  std::vector<float> buf(256 * 1024, 1.0f);
  Status failure;
  for (int iter = 0;; ++iter) {
    failure = pg->AllReduce(buf.data(), buf.size(), DataType::kFloat32, ReduceOp::kMax);
    if (!failure.ok()) break;
    if (iter == 0) std::ofstream(a.store + "/ready." + std::to_string(a.rank)) << "ok";
  }
  std::printf("rank %d: allreduce failed as expected: %s\n", a.rank, failure.ToString().c_str());
  if (failure.code() != StatusCode::kUnavailable &&
      failure.code() != StatusCode::kDeadlineExceeded) {
    return 1;
  }
  if (pg->AllReduce(buf.data(), 1, DataType::kFloat32, ReduceOp::kSum).code() !=
      StatusCode::kFailedPrecondition) {
    std::fprintf(stderr, "rank %d: broken group accepted a call\n", a.rank);
    return 1;
  }
  pg.reset();
  // The survivors (size - 1 of them) meet in generation 1, keeping their relative order.
  auto m = JoinGeneration(*store, GenerationPrefix("kill", 1), a.rank, a.size - 1,
                          std::chrono::seconds(60));
  EXPECT_OK(m.status());
  auto next = Form(store, GenerationPrefix("kill", 1), m->rank, a.size - 1, timeout);
  std::vector<int64_t> v(1000, a.rank + 1);
  EXPECT_OK(next->AllReduce(v.data(), v.size(), DataType::kInt64, ReduceOp::kSum));
  int64_t want = 0;
  for (int64_t id : m->members) want += id + 1;
  Check(v, std::vector<int64_t>(v.size(), want), "allreduce after re-forming");
  std::printf("rank %d: re-formed as rank %d of %d\n", a.rank, m->rank, a.size - 1);
  return failures == 0 ? 0 : 1;
}

// Ranks of one host share a NodeShm and all-gather in a loop until one is SIGKILLed: the others
// must notice the dead pid (kUnavailable), not wait out the 60 s timeout (kDeadlineExceeded).
int ShmKill(const Args& a) {
  auto pg = Form(OpenStore(a.store), "shm_kill", a.rank, a.size, std::chrono::seconds(60));
  auto shm = NodeShm::Create(*pg, "loop", 1 << 16);
  EXPECT_OK(shm.status());
  if (!shm.ok()) return 1;
  const auto blocks = Partition(size_t{100000}, a.size);
  std::vector<float> buf(100000, static_cast<float>(a.rank));
  Status failure;
  for (int iter = 0;; ++iter) {
    failure =
        (*shm)->AllGatherBlocks(buf.data(), blocks, DataType::kFloat32, std::chrono::seconds(60));
    if (!failure.ok()) break;
    if (iter == 0) std::ofstream(a.store + "/ready." + std::to_string(a.rank)) << "ok";
  }
  std::printf("rank %d: shared-memory all-gather failed as expected: %s\n", a.rank,
              failure.ToString().c_str());
  if (failure.code() != StatusCode::kUnavailable) return 1;
  if ((*shm)
          ->AllGatherBlocks(buf.data(), blocks, DataType::kFloat32, std::chrono::seconds(1))
          .code() != StatusCode::kFailedPrecondition) {
    std::fprintf(stderr, "rank %d: broken NodeShm accepted a call\n", a.rank);
    return 1;
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace baton::comm

int main(int argc, char** argv) {
  baton::comm::Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--mode")
      a.mode = v;
    else if (k == "--store")
      a.store = v;
    else if (k == "--rank")
      a.rank = std::atoi(v.c_str());
    else if (k == "--size")
      a.size = std::atoi(v.c_str());
    else if (k == "--nodes")
      a.nodes = std::atoi(v.c_str());
    else if (k == "--per-node")
      a.per_node = std::atoi(v.c_str());
  }
  baton::comm::g_rank = a.rank;
  if (a.mode == "collectives") return baton::comm::CollectivesMode(a);
  if (a.mode == "hring") return baton::comm::Hring(a);
  if (a.mode == "interface") return baton::comm::Interface(a);
  if (a.mode == "kill") return baton::comm::Kill(a);
  if (a.mode == "shm_kill") return baton::comm::ShmKill(a);
  std::fprintf(stderr, "unknown mode %s\n", a.mode.c_str());
  return 2;
}
