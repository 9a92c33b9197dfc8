// infer_model_throughput: the bounds bench/infer/run.sh holds the baton pipeline against.
//
//   infer_model_throughput --model M.pt --shape dense:f32:13 --shape sparse:i64:26:10000
//       --batch 512 --threads 2 --seconds 3
//     Model compute alone: THREADS threads, each with its own instance of the model (like the
//     worker's predictors), call forward() back to back on one random batch each (made once,
//     outside the timing) for SECONDS after two warm-up calls. --shape NAME:TYPE:DIMS[:MAX] gives
//     forward()'s inputs in order, per record: TYPE f32 (standard normal values) or i64 (uniform
//     in [0, MAX), MAX default 2); DIMS like 13 or 3x112x112.
//
//   infer_model_throughput --model M.pt --data-csv rows.csv --spec job.yaml --batch 512 ...
//     The same on the job's own records instead of one random batch: the first --max-rows records
//     of the file, parsed by the job's schema into batches of --batch; each thread cycles through
//     all of them from its own starting point. What a model costs can depend on its data (an
//     embedding lookup over a table of millions of rows misses the cache where one batch repeated
//     hits it), so this is the bound for jobs whose inputs are rows.
//
//   infer_model_throughput --parse-csv rows.csv --spec job.yaml [--threads 1] [--seconds 3]
//     Parse alone: what the worker's preprocessor does to CSV/TSV/JSONL lines already in memory
//     (the first --max-rows records of the file, by the job's infer.tensors schema), in batches of
//     --batch, one RowParser per thread.
//
// Prints one line: mode=model|parse threads=N batch=B malloc=kept|default seconds=S records=R
// records_per_s=X.
//
// Run it with OMP_NUM_THREADS=1 (the infer worker sets it for itself): libtorch's math libraries
// size their thread pools from the environment when they load. By default the tool tells glibc
// malloc to keep freed memory (mmap threshold 64 MiB, trim threshold 256 MiB): with glibc's
// defaults, a thread that calls forward() back to back on one batch, and allocates nothing else,
// hands each call's temporaries back to the kernel and faults them in again on the next call, which
// halves the DLRM's rate on this VM. That is the compute bound without the allocator's churn;
// --default-malloc measures with glibc's defaults.
#include <malloc.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <barrier>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "infer/infer_spec.h"
#include "infer/model_backend.h"
#include "infer/row_parser.h"
#include "infer/tensor.h"

namespace {

using baton::infer::HostTensor;
using baton::infer::TensorType;
using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& message) {
  std::fprintf(stderr, "infer_model_throughput: %s\n", message.c_str());
  std::exit(2);
}

struct InputShape {
  TensorType type = TensorType::kFloat32;
  std::vector<int64_t> dims;  // per record
  int64_t max = 2;            // i64 values are in [0, max)
};

// NAME:TYPE:DIMS[:MAX], e.g. sparse:i64:26:10000 or image:f32:3x112x112.
InputShape ParseShape(const std::string& text) {
  std::vector<std::string> parts;
  for (size_t start = 0;;) {
    size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() < 3 || parts.size() > 4)
    Die("--shape " + text + ": expected NAME:TYPE:DIMS[:MAX]");
  InputShape s;
  if (parts[1] == "f32") {
    s.type = TensorType::kFloat32;
  } else if (parts[1] == "i64") {
    s.type = TensorType::kInt64;
  } else {
    Die("--shape " + text + ": type must be f32 or i64");
  }
  for (size_t start = 0;;) {
    size_t x = parts[2].find('x', start);
    const long long d = std::atoll(parts[2].substr(start, x - start).c_str());
    if (d <= 0) Die("--shape " + text + ": bad dimension");
    s.dims.push_back(d);
    if (x == std::string::npos) break;
    start = x + 1;
  }
  if (parts.size() == 4) s.max = std::atoll(parts[3].c_str());
  if (s.max <= 0) Die("--shape " + text + ": MAX must be positive");
  return s;
}

HostTensor RandomBatch(const InputShape& s, int64_t batch, std::mt19937_64& rng) {
  std::vector<int64_t> shape{batch};
  shape.insert(shape.end(), s.dims.begin(), s.dims.end());
  HostTensor t = baton::infer::ZerosTensor(s.type, shape);
  if (s.type == TensorType::kFloat32) {
    std::normal_distribution<float> dist;
    for (float& v : t.f) v = dist(rng);
  } else {
    std::uniform_int_distribution<int64_t> dist(0, s.max - 1);
    for (int64_t& v : t.i) v = dist(rng);
  }
  return t;
}

// Runs body(thread, stop) on `threads` threads after each has run warm_up(thread); times from the
// moment all are warm until all have seen `stop` set (after `seconds`). Returns (records, seconds).
template <typename WarmUp, typename Body>
std::pair<uint64_t, double> TimeThreads(int threads, double seconds, WarmUp warm_up, Body body) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> records{0};
  std::barrier start(threads + 1), end(threads + 1);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      warm_up(t);
      start.arrive_and_wait();
      uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) n += body(t);
      records += n;
      end.arrive_and_wait();
    });
  }
  start.arrive_and_wait();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  end.arrive_and_wait();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& th : pool) th.join();
  return {records.load(), elapsed};
}

// The first `max_rows` records of `file`, parsed by the job's schema, in batches of `batch`.
std::vector<std::vector<HostTensor>> ParseBatches(const std::string& file,
                                                  const std::string& spec_path, int batch,
                                                  int max_rows) {
  if (spec_path.empty()) Die("--data-csv needs --spec");
  auto spec = baton::infer::LoadInferSpec(spec_path);
  if (!spec.ok()) Die(spec.status().ToString());
  auto columns = baton::infer::ColumnsOf(*spec, file);
  if (!columns.ok()) Die(columns.status().ToString());
  auto parser = baton::infer::RowParser::ForDelimited(*spec, *columns, file);
  if (!parser.ok()) Die(parser.status().ToString());
  std::ifstream in(file);
  std::string line, key;
  if (spec->input_has_header) std::getline(in, line);
  std::vector<std::vector<HostTensor>> batches;
  std::vector<HostTensor> cur = parser->NewBatch(static_cast<size_t>(batch));
  for (int rows = 0; rows < max_rows && std::getline(in, line); ++rows) {
    if (!parser->Append(line, &key, &cur).ok()) continue;  // a bad row is not a model's work
    if (cur[0].rows() == batch) {
      batches.push_back(std::move(cur));
      cur = parser->NewBatch(static_cast<size_t>(batch));
    }
  }
  if (batches.empty()) Die(file + ": fewer than one batch of records");
  return batches;
}

bool default_malloc = false;

void Report(const char* mode, int threads, int batch, std::pair<uint64_t, double> r) {
  std::printf(
      "mode=%s threads=%d batch=%d malloc=%s seconds=%.3f records=%llu records_per_s=%.1f\n", mode,
      threads, batch, default_malloc ? "default" : "kept", r.second,
      static_cast<unsigned long long>(r.first), static_cast<double>(r.first) / r.second);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"infer_model_throughput: model-only or parse-only records/s (bench/infer/run.sh)"};
  std::string model_path, parse_csv, spec_path, data_csv;
  std::vector<std::string> shapes;
  int batch = 512, threads = 1, intra_op = 1, max_rows = 200000;
  double seconds = 3;
  app.add_option("--model", model_path, "TorchScript model: measure forward() alone");
  app.add_option("--shape", shapes, "NAME:TYPE:DIMS[:MAX] per forward() input, in order");
  app.add_option("--data-csv", data_csv, "model mode: the job's records as inputs (needs --spec)");
  app.add_option("--parse-csv", parse_csv, "input file: measure parsing alone (needs --spec)");
  app.add_option("--spec", spec_path, "job spec whose infer.tensors schema parses the file");
  app.add_option("--batch", batch, "records per forward() call / per parsed batch")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "threads, each with its own model instance or parser")
      ->check(CLI::PositiveNumber);
  app.add_option("--intra-op", intra_op, "libtorch intra-op threads (default 1, as the worker)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seconds", seconds, "timed seconds (after warm-up)")->check(CLI::PositiveNumber);
  app.add_option("--max-rows", max_rows, "parse mode: records read into memory")
      ->check(CLI::PositiveNumber);
  app.add_flag("--default-malloc", default_malloc, "keep glibc malloc's default thresholds");
  CLI11_PARSE(app, argc, argv);
  if (!default_malloc) {
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
  }
  if (model_path.empty() == parse_csv.empty()) Die("give either --model or --parse-csv");
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    std::fprintf(stderr, "infer_model_throughput: warning: OMP_NUM_THREADS is not set\n");
  }

  if (!model_path.empty()) {
    if (shapes.empty() == data_csv.empty()) {
      Die("--model needs a --shape per forward() input, or --data-csv with --spec");
    }
    baton::infer::ConfigureRuntimeThreads(intra_op);
    std::vector<std::unique_ptr<baton::infer::ModelBackend>> models;
    // Batches to cycle through: per thread one random batch, or the job's records shared.
    std::vector<std::vector<HostTensor>> batches;
    std::mt19937_64 rng(1);
    for (int t = 0; t < threads; ++t) {
      auto m = baton::infer::LoadModel(model_path, {});
      if (!m.ok()) Die(m.status().ToString());
      models.push_back(std::move(*m));
    }
    if (data_csv.empty()) {
      std::vector<InputShape> inputs;
      for (const std::string& s : shapes) inputs.push_back(ParseShape(s));
      for (int t = 0; t < threads; ++t) {
        batches.emplace_back();
        for (const InputShape& s : inputs) batches.back().push_back(RandomBatch(s, batch, rng));
      }
    } else {
      batches = ParseBatches(data_csv, spec_path, batch, max_rows);
    }
    std::vector<size_t> cursor(static_cast<size_t>(threads));
    for (int t = 0; t < threads; ++t) {
      cursor[static_cast<size_t>(t)] =
          batches.size() * static_cast<size_t>(t) / static_cast<size_t>(threads);
    }
    auto call = [&](int t) -> uint64_t {
      size_t& at = cursor[static_cast<size_t>(t)];
      const std::vector<HostTensor>& in = batches[at % batches.size()];
      at = data_csv.empty() ? static_cast<size_t>(t) : at + 1;
      auto out = models[static_cast<size_t>(t)]->Predict(in);
      if (!out.ok()) Die("forward(): " + out.status().ToString());
      return static_cast<uint64_t>(in.at(0).rows());
    };
    auto warm = [&](int t) { call(t), call(t); };
    Report("model", threads, batch, TimeThreads(threads, seconds, warm, call));
    return 0;
  }

  if (spec_path.empty()) Die("--parse-csv needs --spec");
  auto spec = baton::infer::LoadInferSpec(spec_path);
  if (!spec.ok()) Die(spec.status().ToString());
  std::vector<std::string> lines;
  {
    std::ifstream in(parse_csv);
    if (!in) Die("cannot read " + parse_csv);
    std::string line;
    if (spec->input_has_header) std::getline(in, line);
    while (static_cast<int>(lines.size()) < max_rows && std::getline(in, line)) {
      lines.push_back(line);
    }
  }
  if (lines.empty()) Die(parse_csv + " has no records");
  std::vector<baton::infer::RowParser> parsers;
  for (int t = 0; t < threads; ++t) {
    if (spec->input == baton::infer::InputKind::kJsonl) {
      parsers.push_back(baton::infer::RowParser::ForJsonl(*spec));
      continue;
    }
    auto columns = baton::infer::ColumnsOf(*spec, parse_csv);
    if (!columns.ok()) Die(columns.status().ToString());
    auto p = baton::infer::RowParser::ForDelimited(*spec, *columns, parse_csv);
    if (!p.ok()) Die(p.status().ToString());
    parsers.push_back(std::move(*p));
  }
  std::vector<size_t> next(static_cast<size_t>(threads), 0);  // per thread: its next line
  auto parse = [&](int t) -> uint64_t {
    auto& parser = parsers[static_cast<size_t>(t)];
    size_t& at = next[static_cast<size_t>(t)];
    if (at >= lines.size()) at = 0;
    const size_t begin = at, end = std::min(lines.size(), at + static_cast<size_t>(batch));
    std::vector<HostTensor> tensors = parser.NewBatch(end - begin);
    std::string key;
    for (; at < end; ++at) (void)parser.Append(lines[at], &key, &tensors);  // a bad row counts too
    return static_cast<uint64_t>(end - begin);
  };
  Report("parse", threads, batch,
         TimeThreads(
             threads, seconds, [&](int t) { parse(t); }, parse));
  return 0;
}
