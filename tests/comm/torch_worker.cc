// comm_torch_test_worker: one rank of the torch adapter's multi-process test. torch_test.cc spawns
// `size` of these on loopback; each rank runs allreduce (sum, avg, max), broadcast, all-gather and
// reduce-scatter on at::Tensors of every supported dtype and several shapes, through ProcessGroup
// (baton's ring and gloo) and, with --nodes N --per-node M, through HierarchicalRing, and compares
// the results with torch's own arithmetic over every rank's input. Exits 0 only if all matched.
//
// Inputs are small integers, so sums are exact in every dtype; the driver runs power-of-two group
// sizes, so avg's quotients are exact too (int64 avg truncates, like the raw API).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "comm/file_store.h"
#include "comm/hierarchical_ring.h"
#include "comm/process_group.h"
#include "comm/topology.h"
#include "comm/torch_tensors.h"

namespace baton::comm {
namespace {

int g_rank = 0;
int failures = 0;

void ExpectOk(const Status& s, const std::string& what) {
  if (s.ok()) return;
  std::fprintf(stderr, "rank %d: %s failed: %s\n", g_rank, what.c_str(), s.ToString().c_str());
  std::exit(2);
}

void ExpectEqual(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  if (got.scalar_type() != want.scalar_type() || got.numel() != want.numel()) {
    std::fprintf(stderr, "rank %d: %s: got %s[%lld], want %s[%lld]\n", g_rank, what.c_str(),
                 c10::toString(got.scalar_type()), static_cast<long long>(got.numel()),
                 c10::toString(want.scalar_type()), static_cast<long long>(want.numel()));
    ++failures;
    return;
  }
  const at::Tensor g = got.reshape({-1}).to(at::kDouble), w = want.reshape({-1}).to(at::kDouble);
  const at::Tensor diff = g.ne(w).nonzero();
  if (diff.numel() == 0) return;
  const int64_t i = diff[0][0].item<int64_t>();
  std::fprintf(stderr, "rank %d: %s: [%lld] = %g want %g\n", g_rank, what.c_str(),
               static_cast<long long>(i), g[i].item<double>(), w[i].item<double>());
  ++failures;
}

// Rank r's input: small integers in [-5, 5], different on every rank, as `dtype` in `shape`.
at::Tensor Input(int rank, at::IntArrayRef shape, at::ScalarType dtype) {
  const int64_t n = c10::multiply_integers(shape);
  return ((at::arange(n, at::kLong) * 3 + rank * 7).remainder(11) - 5).to(dtype).reshape(shape);
}

at::Tensor Reference(int size, at::IntArrayRef shape, at::ScalarType dtype, ReduceOp op) {
  at::Tensor out = Input(0, shape, dtype);
  for (int r = 1; r < size; ++r) {
    const at::Tensor in = Input(r, shape, dtype);
    out = op == ReduceOp::kMax ? at::maximum(out, in) : out + in;
  }
  if (op == ReduceOp::kAvg) {
    out = dtype == at::kLong ? at::div(out, size, "trunc") : at::div(out, size);
  }
  return out;
}

std::string Name(const std::string& what, at::ScalarType dtype, at::IntArrayRef shape,
                 const std::string& via) {
  std::string s = what + "/" + c10::toString(dtype) + "/[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]/" + via;
}

// Runs the reductions and all-gather through `g` (a ProcessGroup or a HierarchicalRing).
void CheckReductions(Collectives& g, const CallOptions& call, const std::string& via) {
  const int me = g.rank(), p = g.size();
  const std::vector<std::vector<int64_t>> shapes = {{0}, {1}, {7, 11}, {1001}};
  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kLong, at::kBFloat16}) {
    for (const auto& shape : shapes) {
      const int64_t n = c10::multiply_integers(shape);
      for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax}) {
        at::Tensor t = Input(me, shape, dtype);
        ExpectOk(AllReduce(g, t, op, call), Name("allreduce", dtype, shape, via));
        ExpectEqual(t, Reference(p, shape, dtype, op),
                    Name("allreduce " + std::string(ReduceOpName(op)), dtype, shape, via));
      }
      {
        std::vector<int64_t> out_shape = {p};
        out_shape.insert(out_shape.end(), shape.begin(), shape.end());
        at::Tensor out = at::empty(out_shape, at::TensorOptions().dtype(dtype));
        ExpectOk(AllGather(g, Input(me, shape, dtype), out, call),
                 Name("all_gather", dtype, shape, via));
        std::vector<at::Tensor> all;
        for (int r = 0; r < p; ++r) all.push_back(Input(r, shape, dtype));
        ExpectEqual(out, at::stack(all), Name("all_gather", dtype, shape, via));
      }
      {
        // 1001 elements split unevenly: the first 1001 % p ranks get one more.
        const Block mine = Partition(static_cast<size_t>(n), p)[static_cast<size_t>(me)];
        at::Tensor out =
            at::empty({static_cast<int64_t>(mine.count)}, at::TensorOptions().dtype(dtype));
        ExpectOk(ReduceScatter(g, Input(me, shape, dtype), out, ReduceOp::kSum, call),
                 Name("reduce_scatter", dtype, shape, via));
        const at::Tensor ref = Reference(p, shape, dtype, ReduceOp::kSum).reshape({-1});
        ExpectEqual(
            out, ref.narrow(0, static_cast<int64_t>(mine.offset), static_cast<int64_t>(mine.count)),
            Name("reduce_scatter", dtype, shape, via));
      }
    }
  }
}

void CheckProcessGroup(ProcessGroup& pg) {
  const int me = pg.rank(), p = pg.size();
  CheckReductions(pg, CallOptions{{}, Algorithm::kRing}, "ring");
  CheckReductions(pg, CallOptions{{}, Algorithm::kGloo}, "gloo");
  for (at::ScalarType dtype : {at::kFloat, at::kDouble, at::kLong, at::kBFloat16}) {
    at::Tensor t = me == p - 1 ? Input(me, {7, 11}, dtype) : at::zeros({7, 11}, dtype);
    ExpectOk(Broadcast(pg, t, p - 1), Name("broadcast", dtype, {7, 11}, "gloo"));
    ExpectEqual(t, Input(p - 1, {7, 11}, dtype), Name("broadcast", dtype, {7, 11}, "gloo"));
  }
  // A contiguous view with a storage offset (rows 2..4 of a 7x11 tensor): only the view changes.
  const at::Tensor base = Input(me, {7, 11}, at::kFloat);
  const at::Tensor before = base.clone();
  ExpectOk(AllReduce(pg, base.narrow(0, 2, 3), ReduceOp::kSum), "allreduce of a narrowed view");
  ExpectEqual(base.narrow(0, 2, 3),
              Reference(p, {7, 11}, at::kFloat, ReduceOp::kSum).narrow(0, 2, 3),
              "allreduce of a narrowed view");
  ExpectEqual(base.narrow(0, 0, 2), before.narrow(0, 0, 2), "rows before the view untouched");
  ExpectEqual(base.narrow(0, 5, 2), before.narrow(0, 5, 2), "rows after the view untouched");
}

int Run(const std::string& store_dir, int rank, int size, int nodes, int per_node) {
  auto store = FileStore::Open(store_dir);
  ExpectOk(store.status(), "store");
  GroupOptions o;
  o.prefix = "torch";
  o.rank = rank;
  o.size = size;
  o.timeout = std::chrono::seconds(60);
  auto pg = ProcessGroup::Create(std::shared_ptr<Store>(std::move(*store)), o);
  ExpectOk(pg.status(), "forming the group");
  CheckProcessGroup(**pg);
  if (nodes > 1) {
    // Threshold 0: every size takes the hierarchical path; small chunks so that it pipelines.
    HierarchicalOptions h;
    h.threshold_bytes = 0;
    h.pipeline_chunk_bytes = 1000;
    auto hring = HierarchicalRing::Create(**pg, Topology::Uniform(nodes, per_node), h);
    ExpectOk(hring.status(), "forming HO-Ring");
    CheckReductions(**hring, CallOptions{}, "hring");
  }
  ExpectOk((*pg)->Barrier(), "final barrier");
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace baton::comm

int main(int argc, char** argv) {
  std::string store;
  int rank = 0, size = 1, nodes = 1, per_node = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--store")
      store = v;
    else if (k == "--rank")
      rank = std::atoi(v);
    else if (k == "--size")
      size = std::atoi(v);
    else if (k == "--nodes")
      nodes = std::atoi(v);
    else if (k == "--per-node")
      per_node = std::atoi(v);
  }
  // One intra-op thread: the ranks share the host's cores, and the tensors are small.
  at::set_num_threads(1);
  baton::comm::g_rank = rank;
  return baton::comm::Run(store, rank, size, nodes, per_node);
}
