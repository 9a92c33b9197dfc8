// One LightTEA alignment, timed from before loading the data to the end, printed as key=value
// lines: a `config` line, one `round=` line per round (Hits@1/10, MRR, per-phase seconds) and a
// final line with load_s, total_s, cpu_s and peak_rss_mb. bench/tea/run.sh sweeps seeds and
// summarises. Peer: the official LightTEA code (numpy/scipy + FAISS port, figures in issue 4).
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>

#include "common/process_stats.h"
#include "tea/align.h"
#include "tea/dataset.h"
#include "tea/memory.h"
#include "tea/report.h"

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"LightTEA benchmark: one alignment, key=value output"};
  std::string data_dir;
  baton::tea::AlignOptions opt;
  app.add_option("--data", data_dir, "dataset folder")->required();
  app.add_option("--seeds", opt.num_seeds, "seed pairs")->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed")->capture_default_str();
  app.add_option("--rounds", opt.rounds, "rounds")->capture_default_str();
  app.add_option("--threads", opt.threads, "threads")->capture_default_str();
  app.add_flag("--faithful", opt.faithful, "official quirks");
  app.add_flag("--fp32", opt.fp32, "fp32 throughout");
  app.add_option("--kernel", opt.kernel, "kernel path: auto, avx512, avx2, generic")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  baton::tea::KeepFreedMemoryInHeap();  // as `baton tea align` does
  const auto t0 = std::chrono::steady_clock::now();
  auto data = baton::tea::LoadDataset(data_dir);
  if (!data.ok()) {
    std::cerr << data.status().ToString() << "\n";
    return 2;
  }
  const double load_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto report = baton::tea::Align(*data, opt);
  if (!report.ok()) {
    std::cerr << report.status().ToString() << "\n";
    return 2;
  }
  const double total_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("config seeds=%d seed=%llu mode=%s arithmetic=%s threads=%d rounds=%d kernel=%s\n",
              opt.num_seeds, static_cast<unsigned long long>(opt.seed),
              opt.faithful ? "faithful" : "default", report->reduced_precision ? "fast" : "fp32",
              opt.threads, opt.rounds, report->kernel.c_str());
  std::string lines = baton::tea::ReportLines(*report);
  lines = lines.substr(0, lines.rfind("setup_s="));  // the summary line is replaced below
  std::fputs(lines.c_str(), stdout);
  const auto& last = report->rounds.back();
  std::printf(
      "final seeds=%d seed=%llu mode=%s hits1=%.4f hits10=%.4f mrr=%.4f round1_hits1=%.4f "
      "load_s=%.2f setup_s=%.2f total_s=%.2f cpu_s=%.2f peak_rss_mb=%.0f kernel=%s\n",
      opt.num_seeds, static_cast<unsigned long long>(opt.seed),
      opt.faithful ? "faithful" : "default", last.all.hits1, last.all.hits10, last.all.mrr,
      report->rounds.front().all.hits1, load_s, report->setup_s, total_s, CpuSeconds(),
      static_cast<double>(baton::PeakRssBytes()) / (1 << 20), report->kernel.c_str());
  return 0;
}
