#include "spec/job_spec.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <set>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "common/files.h"
#include "common/job_limits.h"
#include "spec/job_kind.h"
#include "spec/schema_reader.h"
#include "spec/spec_problems.h"

namespace baton {
namespace {

namespace fs = std::filesystem;
using schema::Describe;
using schema::Field;
using schema::IntRange;
using schema::LineOf;
using schema::Quote;
using schema::Reader;
using schema::Section;
using Problems = SpecProblems;

// The schema: every key a section accepts. Anything else is reported, so that a typo such as
// `lease_ms` at the top level is an error instead of a silently ignored setting.
// The control plane's own top-level keys; each registered job kind adds its section's key.
constexpr std::string_view kTopKeys[] = {"name",     "kind",    "nodes",     "spare_nodes",
                                         "input",    "output",  "worker",    "master",
                                         "timeouts", "failure", "rendezvous"};
constexpr std::string_view kInputKeys[] = {
    "paths", "format", "records_per_shard", "skip_header", "epochs", "shuffle", "seed"};
constexpr std::string_view kOutputKeys[] = {"dir", "suffix"};
constexpr std::string_view kWorkerKeys[] = {"command",
                                            "env",
                                            "per_node",
                                            "restart_budget",
                                            "restart_backoff_ms",
                                            "restart_backoff_max_ms",
                                            "stop_grace_ms"};
constexpr std::string_view kMasterKeys[] = {"host", "port", "metrics_port", "state_dir"};
constexpr std::string_view kTimeoutKeys[] = {
    "lease_ms",        "heartbeat_interval_ms", "node_dead_ms",
    "speed_window_ms", "master_unreachable_ms", "agents_gone_ms"};
constexpr std::string_view kRendezvousKeys[] = {"timeout_ms", "min_workers"};
constexpr std::string_view kFailureKeys[] = {"max_shard_retries", "allow_partial",
                                             "max_error_bytes", "master_restarts"};

constexpr schema::SectionKeys kSections[] = {
    {"input", kInputKeys},           {"output", kOutputKeys},    {"worker", kWorkerKeys},
    {"master", kMasterKeys},         {"timeouts", kTimeoutKeys}, {"failure", kFailureKeys},
    {"rendezvous", kRendezvousKeys},
};

// The keys the top level accepts: the control plane's and every job kind's section.
std::vector<std::string_view> TopKeys() {
  std::vector<std::string_view> keys(std::begin(kTopKeys), std::end(kTopKeys));
  for (const JobKind* kind : JobKinds()) {
    if (!kind->Section().empty()) keys.push_back(kind->Section());
  }
  return keys;
}

// "one of command, ...": the registered kinds.
std::string KindRule() {
  std::string rule = "one of ";
  bool first = true;
  for (const JobKind* kind : JobKinds()) {
    if (!first) rule += ", ";
    rule += kind->Name();
    first = false;
  }
  return rule;
}

constexpr std::string_view kNameRule = "a job name matching [A-Za-z0-9_.-]+";

bool IsJobName(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;  // would escape .baton/ as a directory
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

// Why fs::status found nothing: plainly absent, or the OS refused to look (a parent not
// searchable).
std::string WhyMissing(const fs::file_status& st, const std::error_code& ec) {
  if (st.type() == fs::file_type::not_found || !ec) return "does not exist";
  return ec.message();
}

std::string Resolve(const fs::path& base_dir, const std::string& p) {
  return schema::ResolvePath(base_dir, p);
}

using Problems = SpecProblems;

// What the filesystem checks need from the YAML pass: which lists were well-formed, and the lines
// the input paths and the command came from.
struct Lines {
  bool paths_ok = false;
  bool command_ok = false;
  int paths_key = 1;
  std::vector<int> paths;
  int command0 = 1;
  int output_dir = 1;
  int state_dir = 1;
};

// Reads every section into `spec`; returns the lines the filesystem checks need.
Lines ReadSections(const YAML::Node& root, std::span<const std::string_view> top_keys, Reader& r,
                   Problems& problems, JobSpec& spec) {
  Section top = r.Open(root, "", LineOf(root, 1), top_keys);
  auto sub = [&](std::string_view key, std::span<const std::string_view> known) {
    return r.Sub(top, key, known);
  };
  Lines lines;

  if (top.Find("name") == nullptr) {
    r.Missing(top, "name", kNameRule);
  } else if (r.String(top, "name", &spec.name, kNameRule) && !IsJobName(spec.name)) {
    problems.Expected(r.LineOfKey(top, "name"), "name", kNameRule, Quote(spec.name));
    spec.name.clear();
  }
  r.Int(top, "nodes", 1, &spec.nodes);
  r.Int(top, "spare_nodes", 0, &spec.spare_nodes, 1024);
  const std::string kind_rule = KindRule();
  const JobKind* kind = FindJobKind(spec.kind);
  if (r.String(top, "kind", &spec.kind, kind_rule)) {
    kind = FindJobKind(spec.kind);
    if (kind == nullptr) {
      problems.Expected(r.LineOfKey(top, "kind"), "kind", kind_rule, Quote(spec.kind));
    }
  }
  // A kind's own section: required with that kind (as a mapping), refused with any other. Its
  // contents are the kind's to check (JobKind::PreflightCommand).
  for (const JobKind* other : JobKinds()) {
    const std::string_view key = other->Section();
    if (key.empty()) continue;
    const Field* f = top.Find(key);
    if (other != kind) {
      if (f != nullptr) {
        problems.Add(LineOf(f->key, top.line), key,
                     "only with kind: " + std::string(other->Name()));
      }
    } else if (f == nullptr) {
      problems.Add(r.LineOfKey(top, "kind"), key,
                   "missing (kind: " + std::string(kind->Name()) + " needs its " +
                       std::string(key) + " section)");
    } else if (!f->value.IsMap()) {
      problems.Expected(LineOf(f->key, top.line), key, "a mapping", Describe(f->value));
    }
  }

  constexpr std::string_view kPathsRule = "a non-empty list of input files or directories";
  Section input = sub("input", kInputKeys);
  lines.paths_key = r.LineOfKey(input, "paths");
  if (input.Find("paths") == nullptr) {
    r.Missing(input, "paths", kPathsRule);
    lines.paths_ok = false;
  } else {
    lines.paths_ok = r.StringList(input, "paths", kPathsRule, &spec.input.paths, &lines.paths);
  }
  std::string format = RecordFormatName(spec.input.format);
  constexpr std::string_view kFormats = "one of lines, csv, tsv, jsonl, images";
  if (r.String(input, "format", &format, kFormats)) {
    if (format == "lines") {
      spec.input.format = RecordFormat::kLines;
    } else if (format == "csv") {
      spec.input.format = RecordFormat::kCsv;
    } else if (format == "tsv") {
      spec.input.format = RecordFormat::kTsv;
    } else if (format == "jsonl") {
      spec.input.format = RecordFormat::kJsonl;
    } else if (format == "images") {
      spec.input.format = RecordFormat::kImages;
    } else {
      problems.Expected(r.LineOfKey(input, "format"), "input.format", kFormats, Quote(format));
    }
  }
  r.Int(input, "records_per_shard", 1, &spec.input.records_per_shard);
  r.Bool(input, "skip_header", &spec.input.skip_header);
  r.Int(input, "epochs", 1, &spec.input.epochs);
  r.Bool(input, "shuffle", &spec.input.shuffle);
  r.Uint64(input, "seed", &spec.input.seed);

  Section output = sub("output", kOutputKeys);
  lines.output_dir = r.LineOfKey(output, "dir");
  r.String(output, "dir", &spec.output.dir);
  if (r.String(output, "suffix", &spec.output.suffix) &&
      spec.output.suffix.find('/') != std::string::npos) {
    // The suffix is part of a file name; a '/' would write outside output.dir.
    problems.Expected(r.LineOfKey(output, "suffix"), "output.suffix",
                      "a file name suffix without '/'", Quote(spec.output.suffix));
  }

  constexpr std::string_view kCommandRule = "a non-empty list: the program and its arguments";
  Section worker = sub("worker", kWorkerKeys);
  std::vector<std::string> default_command;
  if (kind != nullptr) default_command = kind->DefaultCommand(spec);
  if (worker.Find("command") == nullptr && !default_command.empty()) {
    spec.worker.command = std::move(default_command);
    lines.command_ok = false;  // the kind's: nothing of the user's to check
  } else if (worker.Find("command") == nullptr) {
    r.Missing(worker, "command", kCommandRule);
    lines.command_ok = false;
  } else {
    std::vector<int> command_lines;
    lines.command_ok =
        r.StringList(worker, "command", kCommandRule, &spec.worker.command, &command_lines);
    if (lines.command_ok && spec.worker.command[0].empty()) {
      problems.Expected(command_lines[0], "worker.command[0]", "a program path or name",
                        "an empty string");
      lines.command_ok = false;
    }
    if (!command_lines.empty()) lines.command0 = command_lines[0];
  }
  r.EnvMap(worker, "env", &spec.worker.env);
  if (kind != nullptr) {
    YAML::Node section;  // undefined unless the kind has a well-formed section
    if (const Field* f = kind->Section().empty() ? nullptr : top.Find(kind->Section());
        f != nullptr && f->value.IsMap()) {
      section = f->value;
    }
    for (auto& [name, value] : kind->WorkerEnv(section)) {
      spec.worker.env.emplace(name, value);  // a value the user set wins
    }
  }
  r.Int(worker, "per_node", 1, &spec.worker.per_node, kMaxWorkersPerNode);
  r.Int(worker, "restart_budget", 0, &spec.worker.restart_budget);
  bool backoff_ok = r.Int(worker, "restart_backoff_ms", 1, &spec.worker.restart_backoff_ms);
  bool backoff_max_ok =
      r.Int(worker, "restart_backoff_max_ms", 1, &spec.worker.restart_backoff_max_ms);
  if (backoff_ok && backoff_max_ok &&
      spec.worker.restart_backoff_max_ms < spec.worker.restart_backoff_ms) {
    problems.Expected(r.LineOfKey(worker, "restart_backoff_max_ms"),
                      "worker.restart_backoff_max_ms",
                      "at least worker.restart_backoff_ms (" +
                          std::to_string(spec.worker.restart_backoff_ms) + ")",
                      std::to_string(spec.worker.restart_backoff_max_ms));
  }
  r.Int(worker, "stop_grace_ms", 1, &spec.worker.stop_grace_ms);

  Section master = sub("master", kMasterKeys);
  if (r.String(master, "host", &spec.master.host, "a host name or IP address") &&
      spec.master.host.empty()) {
    problems.Expected(r.LineOfKey(master, "host"), "master.host", "a host name or IP address",
                      "an empty string");
  }
  constexpr int64_t kMaxPort = 65535;
  const bool port_ok = r.Int(master, "port", 0, &spec.master.port, kMaxPort);
  const bool metrics_port_ok =
      r.Int(master, "metrics_port", 0, &spec.master.metrics_port, kMaxPort);
  if (port_ok && metrics_port_ok && spec.master.port != 0 &&
      spec.master.port == spec.master.metrics_port) {
    problems.Expected(r.LineOfKey(master, "metrics_port"), "master.metrics_port",
                      "a port other than master.port", std::to_string(spec.master.metrics_port));
  }
  lines.state_dir = r.LineOfKey(master, "state_dir");
  r.String(master, "state_dir", &spec.master.state_dir);

  Section timeouts = sub("timeouts", kTimeoutKeys);
  constexpr int64_t kMinLeaseMs = 100;  // shorter leases expire before a renewal can arrive
  r.Int(timeouts, "lease_ms", kMinLeaseMs, &spec.timeouts.lease_ms);
  bool heartbeat_ok =
      r.Int(timeouts, "heartbeat_interval_ms", 1, &spec.timeouts.heartbeat_interval_ms);
  bool dead_ok = r.Int(timeouts, "node_dead_ms", 1, &spec.timeouts.node_dead_ms);
  if (heartbeat_ok && dead_ok &&
      spec.timeouts.node_dead_ms <= spec.timeouts.heartbeat_interval_ms) {
    // Otherwise every node would be declared dead between two of its own heartbeats.
    problems.Expected(r.LineOfKey(timeouts, "node_dead_ms"), "timeouts.node_dead_ms",
                      "more than timeouts.heartbeat_interval_ms (" +
                          std::to_string(spec.timeouts.heartbeat_interval_ms) + ")",
                      std::to_string(spec.timeouts.node_dead_ms));
  }
  r.Int(timeouts, "speed_window_ms", 1, &spec.timeouts.speed_window_ms);
  r.Int(timeouts, "master_unreachable_ms", 1, &spec.timeouts.master_unreachable_ms);
  r.Int(timeouts, "agents_gone_ms", 0, &spec.timeouts.agents_gone_ms);

  Section failure = sub("failure", kFailureKeys);
  r.Int(failure, "max_shard_retries", 0, &spec.failure.max_shard_retries);
  r.Bool(failure, "allow_partial", &spec.failure.allow_partial);
  r.Int(failure, "max_error_bytes", 1, &spec.failure.max_error_bytes);
  r.Int(failure, "master_restarts", 0, &spec.failure.master_restarts);

  Section rendezvous = sub("rendezvous", kRendezvousKeys);
  r.Int(rendezvous, "timeout_ms", 1, &spec.rendezvous.timeout_ms);
  r.Int(rendezvous, "min_workers", 1, &spec.rendezvous.min_workers);
  return lines;
}

// Whether `path` holds at least one record: any byte at all, or any byte after the first line
// when that line is a header. Reads at most the first line.
bool HasRecord(const std::string& path, bool skip_header) {
  std::ifstream in(path, std::ios::binary);
  if (skip_header) in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  return in.peek() != std::ifstream::traits_type::eof();
}

// Expands input.paths into the regular files they name, keeping only files that hold records.
void CheckInputs(const Lines& lines, Problems& problems, JobSpec& spec) {
  const fs::path base(spec.base_dir);
  std::vector<std::string> files;
  std::set<std::string> seen;
  bool ok = true;
  for (size_t i = 0; i < spec.input.paths.size(); ++i) {
    const std::string key = "input.paths[" + std::to_string(i) + "]";
    const int line = lines.paths[i];
    const std::string p = Resolve(base, spec.input.paths[i]);
    std::error_code ec;
    const fs::file_status st = fs::status(p, ec);
    if (!fs::exists(st)) {
      problems.Expected(line, key, "an existing file or directory",
                        Quote(p) + " (" + WhyMissing(st, ec) + ")");
      ok = false;
      continue;
    }
    std::vector<std::string> found;
    if (fs::is_directory(st)) {
      fs::directory_iterator it(p, ec);
      for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.starts_with(".")) continue;  // .DS_Store, editor swap files, _SUCCESS markers
        std::error_code type_ec;
        if (it->is_regular_file(type_ec)) found.push_back(it->path().string());
      }
      if (ec) {
        problems.Expected(line, key, "a readable directory", Quote(p) + " (" + ec.message() + ")");
        ok = false;
        continue;
      }
      std::sort(found.begin(), found.end());
    } else if (fs::is_regular_file(st)) {
      found.push_back(p);
    } else {
      problems.Expected(line, key, "a regular file or directory", Quote(p));
      ok = false;
      continue;
    }
    for (const std::string& file : found) {
      if (::access(file.c_str(), R_OK) != 0) {
        problems.Expected(line, key, "a readable file", Quote(file) + " (permission denied)");
        ok = false;
      } else if (!seen.insert(file).second) {
        // Reading a file twice would count its records twice.
        problems.Expected(line, key, "each input file once", Quote(file) + " a second time");
        ok = false;
      } else {
        files.push_back(file);
      }
    }
  }
  if (!ok) return;  // "empty dataset" would only repeat what is already reported

  std::vector<std::string> with_records;
  for (const std::string& file : files) {
    if (HasRecord(file, spec.input.skip_header)) with_records.push_back(file);
  }
  if (with_records.empty()) {
    std::string why = files.empty()            ? "no files found"
                      : spec.input.skip_header ? "every file is empty or holds only a header"
                                               : "every file is empty";
    problems.Expected(lines.paths_key, "input.paths", "at least one record",
                      "an empty dataset (" + why + ")");
    return;
  }
  // Files without records are left out, so the splitter never sees an empty file.
  spec.input.paths = std::move(with_records);
}

// `p` must not exist as anything but a directory (it is created when the job starts).
void CheckDirectory(const std::string& p, int line, std::string_view key, Problems& problems) {
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (fs::exists(st) && !fs::is_directory(st)) {
    problems.Expected(line, key, "a directory", Quote(p) + " (not a directory)");
  }
}

void CheckCommand(int line, Problems& problems, JobSpec& spec) {
  std::string& program = spec.worker.command[0];
  if (program.find('/') == std::string::npos) return;  // looked up on PATH when spawned
  program = Resolve(fs::path(spec.base_dir), program);
  std::error_code ec;
  const fs::file_status st = fs::status(program, ec);
  std::string why;
  if (!fs::exists(st)) {
    why = WhyMissing(st, ec);
  } else if (!fs::is_regular_file(st)) {
    why = "not a regular file";
  } else if (::access(program.c_str(), X_OK) != 0) {
    why = "not executable";
  } else {
    return;
  }
  problems.Expected(line, "worker.command[0]", "an executable file",
                    Quote(program) + " (" + why + ")");
}

}  // namespace

std::string RecordFormatName(RecordFormat f) {
  switch (f) {
    case RecordFormat::kLines:
      return "lines";
    case RecordFormat::kCsv:
      return "csv";
    case RecordFormat::kJsonl:
      return "jsonl";
    case RecordFormat::kTsv:
      return "tsv";
    case RecordFormat::kImages:
      return "images";
  }
  return "unknown";
}

Result<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& path) {
  BATON_ASSIGN_OR_RETURN(schema::Document doc, schema::ParseDocument(yaml_text, path));
  const YAML::Node& root = doc.root;
  JobSpec spec;
  spec.spec_path = doc.path;
  spec.base_dir = doc.base_dir.string();

  Problems problems(path);
  // The schema, for "did you mean section.key" hints: the top level as registered kinds extend it.
  const std::vector<std::string_view> top_keys = TopKeys();
  std::vector<schema::SectionKeys> sections = {{"", top_keys}};
  sections.insert(sections.end(), std::begin(kSections), std::end(kSections));
  Reader reader(&problems, sections);
  try {
    Lines lines = ReadSections(root, top_keys, reader, problems, spec);
    if (lines.paths_ok) CheckInputs(lines, problems, spec);
    if (lines.command_ok) CheckCommand(lines.command0, problems, spec);
    if (!spec.output.dir.empty()) {
      spec.output.dir = Resolve(spec.base_dir, spec.output.dir);
      CheckDirectory(spec.output.dir, lines.output_dir, "output.dir", problems);
    }
    if (!spec.master.state_dir.empty()) {
      spec.master.state_dir = Resolve(spec.base_dir, spec.master.state_dir);
    } else if (!spec.name.empty()) {
      spec.master.state_dir = Resolve(spec.base_dir, ".baton/" + spec.name);
    }
    if (!spec.master.state_dir.empty()) {
      CheckDirectory(spec.master.state_dir, lines.state_dir, "master.state_dir", problems);
    }
  } catch (const YAML::Exception& e) {
    // Node access does not throw on the checked shapes above; this guards against a yaml-cpp
    // surprise turning into an exception across the module boundary.
    return Status::Internal(path + ": unexpected YAML error: " + e.what());
  }

  if (!problems.empty()) return problems.ToStatus();
  return spec;
}

Result<JobSpec> LoadJobSpec(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) return Status::NotFound("job spec " + path + ": no such file");
  if (fs::is_directory(st)) {
    return Status::InvalidArgument(path + ": expected a YAML job spec file, got a directory");
  }
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  return ParseJobSpec(*text, path);
}

}  // namespace baton
