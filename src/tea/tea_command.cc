#include "tea/tea_command.h"

#include <iostream>
#include <memory>

#include "common/files.h"
#include "tea/align.h"
#include "tea/dataset.h"
#include "tea/memory.h"
#include "tea/report.h"

namespace baton::tea {
namespace {

struct AlignFlags {
  std::string data;
  std::string out;
  std::string predictions;  // --predictions FILE
  AlignOptions opt;
};

int RunAlign(const AlignFlags& f) {
  KeepFreedMemoryInHeap();
  auto data = LoadDataset(f.data);
  if (!data.ok()) {
    std::cerr << "baton tea align: " << data.status().message() << "\n";
    return 2;
  }
  AlignOptions opt = f.opt;
  if (f.predictions.empty()) opt.predictions_k = 0;
  auto report = Align(*data, opt);
  if (!report.ok()) {
    std::cerr << "baton tea align: " << report.status().message() << "\n";
    return report.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::cout << ReportLines(*report) << std::flush;
  if (!f.out.empty()) {
    Status s = WriteFileAtomic(f.out, ReportJson(*report, f.opt));
    if (!s.ok()) {
      std::cerr << "baton tea align: writing " << f.out << ": " << s.ToString() << "\n";
      return 1;
    }
  }
  if (!f.predictions.empty()) {
    Status s = WriteFileAtomic(f.predictions, PredictionsTsv(*report, *data));
    if (!s.ok()) {
      std::cerr << "baton tea align: writing " << f.predictions << ": " << s.ToString() << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace

void AddTeaCommand(CLI::App& app, int& exit_code) {
  CLI::App* tea = app.add_subcommand("tea", "Temporal entity alignment (LightTEA)");
  tea->require_subcommand(1);
  auto flags = std::make_shared<AlignFlags>();
  flags->opt.predictions_k = 10;
  CLI::App* align =
      tea->add_subcommand("align", "Align two temporal knowledge graphs and report Hits@1/10, MRR");
  align
      ->add_option("--data", flags->data, "Dataset folder (triples_1/2, sup_pairs, ref_pairs, ...)")
      ->required();
  align
      ->add_option("--seeds", flags->opt.num_seeds,
                   "Number of leading pairs of sup_pairs ++ ref_pairs used as seeds")
      ->required();
  align->add_option("--rounds", flags->opt.rounds, "Iterative-learning rounds")
      ->capture_default_str();
  align->add_option("--threads", flags->opt.threads, "Worker threads")->capture_default_str();
  align->add_option("--seed", flags->opt.seed, "Random seed (same seed, same result)")
      ->capture_default_str();
  align->add_flag("--faithful", flags->opt.faithful,
                  "Reproduce the official code's quirks (see docs/tea.md)");
  align->add_option("--out", flags->out, "Write metrics and timings as JSON to this file");
  align->add_option("--predictions", flags->predictions,
                    "Write the alignment to this file: per source entity its best candidates with "
                    "scores, ids and names (tab-separated; docs/tea.md)");
  align
      ->add_option("--predictions-k", flags->opt.predictions_k,
                   "Candidates per source entity in --predictions")
      ->capture_default_str()
      ->check(CLI::Range(1, 500));
  align->add_flag("--unmatched", flags->opt.unmatched,
                  "Align every KG1 entity outside the seeds against every KG2 entity outside the "
                  "seeds (entities with no known partner too; --seeds may be all pairs)");
  align->add_option("--depth", flags->opt.depth, "Propagation steps (default mode only)")
      ->capture_default_str();
  align->add_flag("--fp32", flags->opt.fp32,
                  "fp32 throughout (BLAS projections, brute-force search) instead of bf16 "
                  "projections and int8 candidates with fp32 re-scoring");
  align
      ->add_option("--kernel", flags->opt.kernel,
                   "Kernel path: auto (BATON_TEA_KERNEL, else the best this CPU has), avx512, "
                   "avx2 or generic")
      ->capture_default_str();
  align->add_flag("--simt-dedup", flags->opt.simt_dedup,
                  "Temporal similarity counts each (entity, time) of a fact once");
  align->callback([flags, &exit_code] { exit_code = RunAlign(*flags); });
}

}  // namespace baton::tea
