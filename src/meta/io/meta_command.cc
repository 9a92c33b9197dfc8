#include "meta/io/meta_command.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/safe_text.h"
#include "meta/io/episode_file.h"
#include "meta/io/prepare.h"

namespace baton::meta {
namespace {

struct PrepareFlags {
  PrepareOptions opt;
  std::string format = "auto";
  uint64_t seed = 0;
  CLI::Option* seed_option = nullptr;
};

struct InspectFlags {
  std::string path;
  size_t head = 5;
  bool verify = false;
};

int ExitCodeOf(const Status& s) {
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? 2 : 1;
}

int RunPrepare(PrepareFlags& f) {
  static const std::map<std::string, InputFormat> kFormats = {
      {"auto", InputFormat::kAuto}, {"csv", InputFormat::kCsv}, {"jsonl", InputFormat::kJsonl}};
  PrepareOptions opt = f.opt;
  opt.format = kFormats.at(f.format);  // CLI::IsMember checked it
  if (f.seed_option->count() > 0) opt.seed = f.seed;

  // Progress on stderr, at most every 2 s and only once the input has taken that long.
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  Clock::time_point last_print = start;
  opt.progress_every = 50000;
  opt.progress = [&](uint64_t rows) {
    const Clock::time_point now = Clock::now();
    if (now - last_print < std::chrono::seconds(2)) return;
    last_print = now;
    const double secs = std::chrono::duration<double>(now - start).count();
    std::fprintf(stderr, "baton meta prepare: %llu rows read, %.0f rows/s\n",
                 static_cast<unsigned long long>(rows), rows / secs);
  };

  Result<PrepareSummary> r = Prepare(opt);
  if (!r.ok()) {
    std::fprintf(stderr, "baton meta prepare: %s\n", r.status().message().c_str());
    return ExitCodeOf(r.status());
  }
  const PrepareSummary& s = *r;
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  if (s.bad_rows > 0) {
    std::fprintf(stderr, "baton meta prepare: %llu bad row(s) skipped, listed in %s\n",
                 static_cast<unsigned long long>(s.bad_rows), s.errors_path.c_str());
  }
  if (s.tasks_written == 0) {
    std::fprintf(stderr,
                 "baton meta prepare: warning: no task had %zu good rows; %s holds no "
                 "episodes\n",
                 opt.min_rows, s.output.c_str());
  }
  std::printf(
      "tasks=%llu rows=%llu bad_rows=%llu skipped_tasks=%llu skipped_rows=%llu capped_rows=%llu "
      "support_rows=%llu query_rows=%llu seconds=%.2f out=%s errors=%s index=%s\n",
      static_cast<unsigned long long>(s.tasks_written),
      static_cast<unsigned long long>(s.rows_read), static_cast<unsigned long long>(s.bad_rows),
      static_cast<unsigned long long>(s.tasks_skipped),
      static_cast<unsigned long long>(s.rows_skipped),
      static_cast<unsigned long long>(s.rows_capped),
      static_cast<unsigned long long>(s.support_rows),
      static_cast<unsigned long long>(s.query_rows), secs, s.output.c_str(), s.errors_path.c_str(),
      s.index_path.c_str());
  std::fflush(stdout);
  return 0;
}

int RunInspect(const InspectFlags& f) {
  Result<EpisodeFile> file = EpisodeFile::Open(f.path);
  if (!file.ok()) {
    std::fprintf(stderr, "baton meta inspect: %s\n", file.status().message().c_str());
    return ExitCodeOf(file.status());
  }
  uint64_t support = 0, query = 0, bytes = 0;
  for (size_t i = 0; i < file->size(); ++i) {
    support += file->num_support(i);
    query += file->num_query(i);
    bytes += file->record_bytes(i);
  }
  std::printf(
      "episodes=%zu num_dense=%u num_sparse=%u support_rows=%llu query_rows=%llu "
      "record_bytes=%llu\n",
      file->size(), file->num_dense(), file->num_sparse(), static_cast<unsigned long long>(support),
      static_cast<unsigned long long>(query), static_cast<unsigned long long>(bytes));
  const size_t shown = std::min(f.head, file->size());
  if (shown > 0) std::printf("%8s %10s %10s  %s\n", "episode", "support", "query", "task_id");
  for (size_t i = 0; i < shown; ++i) {
    std::printf("%8zu %10u %10u  %s\n", i, file->num_support(i), file->num_query(i),
                SafeText(file->task_id(i), 80).c_str());
  }
  if (shown < file->size()) std::printf("... %zu more\n", file->size() - shown);
  if (f.verify) {
    for (size_t i = 0; i < file->size(); ++i) {
      Result<Episode> e = file->Read(i);
      if (!e.ok()) {
        std::fflush(stdout);
        std::fprintf(stderr, "baton meta inspect: %s\n", e.status().message().c_str());
        return 1;
      }
    }
    std::printf("verified=%zu\n", file->size());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

void AddMetaCommand(CLI::App& app, int& exit_code) {
  CLI::App* meta = app.add_subcommand(
      "meta", "G-Meta meta learning: episode files for meta-training (docs/meta.md)");
  meta->require_subcommand(1);

  auto pf = std::make_shared<PrepareFlags>();
  CLI::App* prepare = meta->add_subcommand(
      "prepare",
      "Turn rows (CSV with a header, or JSONL) into an episode file: rows are grouped by task, "
      "each task's rows split into support (older, or first in file order) and query rows, one "
      "episode per task. Bad rows are skipped and listed in an errors file (JSONL: file, line, "
      "error). Prints a key=value summary. Exit 0 done, 2 bad options or inputs, 1 I/O failure.");
  PrepareOptions& o = pf->opt;
  prepare->add_option("--input", o.inputs, "Input file (repeat for several; read in this order)")
      ->required();
  prepare->add_option("--out", o.output, "Episode file to write (atomically)")->required();
  prepare->add_option("--task-key", o.task_key, "Column naming each row's task")->required();
  prepare->add_option("--label", o.label, "Label column: 0/1 or true/false")->required();
  prepare->add_option("--dense", o.dense, "Float feature columns, comma-separated (in this order)")
      ->delimiter(',');
  prepare
      ->add_option("--sparse", o.sparse,
                   "Categorical feature columns, comma-separated; values hashed to ids with "
                   "XXH3-64 salted by field position (docs/meta.md)")
      ->delimiter(',');
  prepare->add_option("--order-by", o.order_by,
                      "Numeric column ordering a task's rows (e.g. a timestamp): older rows "
                      "become support (default: file order)");
  prepare
      ->add_option("--support-fraction", o.support_fraction,
                   "Share of a task's rows used as support: floor(n*f), clamped to [1, n-1]; "
                   "strictly between 0 and 1")
      ->capture_default_str();
  prepare
      ->add_option("--min-rows", o.min_rows,
                   "Skip tasks with fewer good rows than this (at least 2)")
      ->capture_default_str();
  prepare
      ->add_option("--max-support", o.max_support,
                   "At most this many support rows per episode, the newest kept (0: no cap)")
      ->capture_default_str();
  prepare
      ->add_option("--max-query", o.max_query,
                   "At most this many query rows per episode, the oldest kept (0: no cap)")
      ->capture_default_str();
  pf->seed_option = prepare->add_option(
      "--seed", pf->seed,
      "Shuffle the episode order with this seed (default: episodes sorted by task id)");
  prepare->add_option("--errors", o.errors_path,
                      "Where bad rows are listed (default: OUT.errors.jsonl)");
  prepare
      ->add_option("--format", pf->format,
                   "Input format: auto (by extension: .csv, .jsonl, .ndjson), csv or jsonl")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "csv", "jsonl"}));
  prepare->callback([pf, &exit_code] { exit_code = RunPrepare(*pf); });

  auto inf = std::make_shared<InspectFlags>();
  CLI::App* inspect = meta->add_subcommand(
      "inspect",
      "Print an episode file's episode count, columns and first episodes (task id, support and "
      "query rows); with --verify also read every episode and check its checksum. Exit 0 fine, "
      "2 no such file, 1 a corrupt file.");
  inspect->add_option("episodes", inf->path, "Episode file")->required();
  inspect->add_option("--head", inf->head, "Episodes to list")->capture_default_str();
  inspect->add_flag("--verify", inf->verify, "Read every episode and check its checksum");
  inspect->callback([inf, &exit_code] { exit_code = RunInspect(*inf); });
}

}  // namespace baton::meta
