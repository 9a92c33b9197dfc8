// mpi_bench: Open MPI's allreduce, reduce-scatter and all-gather of float32, the outside baseline
// that comm_bench's gloo and baton-ring figures are compared with (bench/comm/run.sh runs both).
//
//   mpirun -np N [--mca btl self,tcp --mca btl_tcp_if_include lo] mpi_bench [flags]
// Flags: --sizes 1M,16M,64M (bytes; K/M/G suffixes are KiB/MiB/GiB), --iters 10 (timed calls per
// size), --warmup 2, --colls allreduce,reduce_scatter,all_gather, --label NAME (default
// loopback-N; run.sh names the shared-memory transport loopback-N-mpi-shm).
//
// Rank 0 prints one `key=value` line per (collective, size):
//   mpi config=loopback-4 coll=allreduce bytes=... iters=... mpi_ms=... mpi_busbw_MBps=...
// Sizes, message bytes and busbw follow comm_bench exactly: count = bytes / 4 floats (at least one
// per rank); allreduce is in place on `count` (MPI_IN_PLACE, as baton's is) and counts count * 4
// bytes; reduce-scatter (MPI_Reduce_scatter_block) takes count / n floats per rank and all-gather
// gives count / n per rank, both counting (count / n) * n * 4 bytes. busbw (nccl-tests) is algbw *
// 2(n-1)/n for allreduce and algbw * (n-1)/n for the others, algbw = bytes / time, in MB/s (1e6).
// Timing: each iteration is a barrier, one timed call, and a max-reduce of the elapsed time (the
// slowest rank); mpi_ms is the median of those over the iterations. (comm_bench reports the mean
// per call of its best round; on a quiet host the two agree closely, under load the median is the
// steadier figure.) The warm-up calls run on rank-dependent values and the first one's result is
// checked, so a broken MPI setup fails loudly instead of printing fast nonsense.
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct Flags {
  std::vector<size_t> sizes = {1u << 20, 16u << 20, 64u << 20};
  int iters = 10;
  int warmup = 2;
  std::vector<std::string> colls = {"allreduce", "reduce_scatter", "all_gather"};
  std::string label;
};

std::vector<std::string> Split(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = std::min(s.find(',', start), s.size());
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// "67108864", "64M", "16K", "1G" -> bytes; 0 if malformed.
size_t ParseBytes(const std::string& s) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  const std::string suffix = end;
  if (end == s.c_str()) return 0;
  if (suffix.empty()) return v;
  if (suffix == "K") return v << 10;
  if (suffix == "M") return v << 20;
  if (suffix == "G") return v << 30;
  return 0;
}

[[noreturn]] void Usage(int rank, const std::string& why) {
  if (rank == 0) {
    std::fprintf(stderr,
                 "mpi_bench: %s\nusage: mpirun -np N mpi_bench [--sizes 1M,16M,64M] [--iters 10] "
                 "[--warmup 2] [--colls allreduce,reduce_scatter,all_gather] [--label NAME]\n",
                 why.c_str());
  }
  MPI_Finalize();
  std::exit(2);
}

void Check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  std::fprintf(stderr, "mpi_bench: %s: %s\n", what, msg);
  MPI_Abort(MPI_COMM_WORLD, 1);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// One (collective, size): checked warm-up, then `iters` timed calls; returns the median of the
// slowest rank's time per call, in seconds (the same value on every rank).
double Measure(const std::string& coll, size_t count, int rank, int n, const Flags& f) {
  const size_t per_rank = count / static_cast<size_t>(n);
  const int pr = static_cast<int>(per_rank);
  // Reduce-scatter reads per_rank * n floats and writes per_rank; all-gather the reverse.
  std::vector<float> buf(coll == "allreduce" ? count : per_rank * static_cast<size_t>(n));
  std::vector<float> out(coll == "reduce_scatter" ? per_rank : per_rank * static_cast<size_t>(n));
  auto call = [&] {
    if (coll == "allreduce") {
      return MPI_Allreduce(MPI_IN_PLACE, buf.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                           MPI_COMM_WORLD);
    }
    if (coll == "reduce_scatter") {
      return MPI_Reduce_scatter_block(buf.data(), out.data(), pr, MPI_FLOAT, MPI_SUM,
                                      MPI_COMM_WORLD);
    }
    // comm_bench's all-gather input is the first per_rank floats of its buffer.
    return MPI_Allgather(buf.data(), pr, MPI_FLOAT, out.data(), pr, MPI_FLOAT, MPI_COMM_WORLD);
  };

  // Warm-up on rank + 1 everywhere; check the first call's result.
  for (int w = 0; w < std::max(f.warmup, 1); ++w) {
    std::fill(buf.begin(), buf.end(), static_cast<float>(rank + 1));
    Check(call(), "warm-up call");
    if (w > 0) continue;
    const float sum = static_cast<float>(n * (n + 1) / 2);
    bool ok = true;
    if (coll == "allreduce") {
      ok = buf.front() == sum && buf.back() == sum;
    } else if (coll == "reduce_scatter") {
      ok = out.empty() || (out.front() == sum && out.back() == sum);
    } else {
      for (int r = 0; r < n && ok && per_rank > 0; ++r) {
        ok = out[static_cast<size_t>(r) * per_rank] == static_cast<float>(r + 1);
      }
    }
    if (!ok) {
      std::fprintf(stderr, "mpi_bench: rank %d: %s of %zu floats gave a wrong result\n", rank,
                   coll.c_str(), count);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  // Zeros keep allreduce's in-place sums from growing; the arithmetic costs the same.
  std::fill(buf.begin(), buf.end(), 0.0f);
  std::vector<double> slowest;
  for (int i = 0; i < f.iters; ++i) {
    Check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
    const double t0 = MPI_Wtime();
    Check(call(), "timed call");
    double t = MPI_Wtime() - t0, max = 0;
    Check(MPI_Allreduce(&t, &max, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "timing reduction");
    slowest.push_back(max);
  }
  return Median(slowest);
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, n = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  // Errors come back as codes (Check reports them and aborts the job) instead of MPI's default
  // of aborting without saying which call failed.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);

  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) Usage(rank, "missing value for " + k);
    const std::string v = argv[++i];
    if (k == "--sizes") {
      f.sizes.clear();
      for (const auto& s : Split(v)) {
        const size_t b = ParseBytes(s);
        if (b == 0) Usage(rank, "bad size " + s);
        f.sizes.push_back(b);
      }
    } else if (k == "--iters") {
      f.iters = std::atoi(v.c_str());
    } else if (k == "--warmup") {
      f.warmup = std::atoi(v.c_str());
    } else if (k == "--colls") {
      f.colls = Split(v);
      for (const auto& c : f.colls) {
        if (c != "allreduce" && c != "reduce_scatter" && c != "all_gather") {
          Usage(rank, "unknown collective " + c);
        }
      }
    } else if (k == "--label") {
      f.label = v;
    } else {
      Usage(rank, "unknown flag " + k);
    }
  }
  if (f.iters < 1 || f.sizes.empty() || f.colls.empty()) Usage(rank, "nothing to measure");
  if (f.label.empty()) f.label = "loopback-" + std::to_string(n);

  const double nd = n;
  for (const auto& coll : f.colls) {
    for (size_t bytes : f.sizes) {
      const size_t count = std::max<size_t>(bytes / 4, static_cast<size_t>(n));
      if (count > static_cast<size_t>(INT_MAX)) Usage(rank, "size too large for an int count");
      const size_t per_rank = count / static_cast<size_t>(n);
      const size_t msg = (coll == "allreduce" ? count : per_rank * static_cast<size_t>(n)) * 4;
      const double t = Measure(coll, count, rank, n, f);
      if (rank != 0) continue;
      const double factor = (coll == "allreduce" ? 2 : 1) * (nd - 1) / nd;
      std::printf("mpi config=%s coll=%s bytes=%zu iters=%d mpi_ms=%.3f mpi_busbw_MBps=%.1f\n",
                  f.label.c_str(), coll.c_str(), msg, f.iters, t * 1e3,
                  static_cast<double>(msg) / t * factor / 1e6);
      std::fflush(stdout);
    }
  }
  MPI_Finalize();
  return 0;
}
