#include "launch/job_spec.h"

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
#include "common/spec_problems.h"

namespace baton {
namespace {

namespace fs = std::filesystem;

// The schema: every key a section accepts. Anything else is reported, so that a typo such as
// `lease_ms` at the top level is an error instead of a silently ignored setting.
constexpr std::string_view kTopKeys[] = {"name",   "kind",   "nodes",    "input",   "output",
                                         "worker", "master", "timeouts", "failure", "infer"};
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
constexpr std::string_view kFailureKeys[] = {"max_shard_retries", "allow_partial",
                                             "max_error_bytes", "master_restarts"};

struct SchemaSection {
  std::string_view path;
  std::span<const std::string_view> keys;
};
constexpr SchemaSection kSchema[] = {
    {"", kTopKeys},
    {"input", kInputKeys},
    {"output", kOutputKeys},
    {"worker", kWorkerKeys},
    {"master", kMasterKeys},
    {"timeouts", kTimeoutKeys},
    {"failure", kFailureKeys},
};

constexpr std::string_view kNameRule = "a job name matching [A-Za-z0-9_.-]+";

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t substitute = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, substitute});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Join(std::span<const std::string_view> items, std::string_view sep) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// "unknown key (...)": the closest key of the same section within two edits, else the same key in
// another section (a setting put at the wrong level), else the list of keys the section accepts.
std::string UnknownKeyMessage(std::string_view section, std::span<const std::string_view> known,
                              std::string_view key) {
  std::string_view best;
  size_t best_distance = 3;
  for (std::string_view candidate : known) {
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (!best.empty()) return "unknown key (did you mean \"" + std::string(best) + "\"?)";
  for (const SchemaSection& other : kSchema) {
    if (other.path == section) continue;
    if (std::find(other.keys.begin(), other.keys.end(), key) != other.keys.end()) {
      std::string where =
          other.path.empty() ? std::string(key) : std::string(other.path) + "." + std::string(key);
      return "unknown key (did you mean \"" + where + "\"?)";
    }
  }
  return "unknown key (expected one of: " + Join(known, ", ") + ")";
}

std::string Quote(std::string_view s) {
  constexpr size_t kMax = 60;  // keeps a pasted blob from flooding the terminal
  if (s.size() > kMax) return "\"" + std::string(s.substr(0, kMax)) + "...\"";
  return "\"" + std::string(s) + "\"";
}

// yaml-cpp tags a quoted scalar "!"; a quoted "10" is a string, not an integer.
bool IsQuoted(const YAML::Node& n) { return n.Tag() == "!"; }

// What the user wrote, for the "got ..." half of a message.
std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return IsQuoted(n) ? "the string " + Quote(n.Scalar()) : Quote(n.Scalar());
    case YAML::NodeType::Sequence:
      return n.size() == 0 ? "an empty list" : "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// 1-based line of `n`; yaml-cpp lines are 0-based and some nodes (an empty value) have none.
int LineOf(const YAML::Node& n, int fallback) {
  const YAML::Mark mark = n.Mark();
  return mark.line >= 0 ? mark.line + 1 : fallback;
}

std::optional<int64_t> ParseInt(const YAML::Node& n) {
  if (!n.IsScalar() || IsQuoted(n)) return std::nullopt;
  const std::string& s = n.Scalar();
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<uint64_t> ParseUint(const YAML::Node& n) {
  if (!n.IsScalar() || IsQuoted(n)) return std::nullopt;
  const std::string& s = n.Scalar();
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "a positive integer", or "an integer in 0..65535" when the bound is the key's own (not merely
// the field type's).
std::string IntRange(int64_t lo, std::optional<int64_t> hi) {
  if (hi) return "an integer in " + std::to_string(lo) + ".." + std::to_string(*hi);
  if (lo == 0) return "a non-negative integer";
  if (lo == 1) return "a positive integer";
  return "an integer >= " + std::to_string(lo);
}

bool IsJobName(std::string_view s) {
  if (s.empty() || s == "." || s == "..") return false;  // would escape .baton/ as a directory
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
  });
}

bool IsEnvName(std::string_view s) {
  if (s.empty() || (s[0] >= '0' && s[0] <= '9')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// Why fs::status found nothing: plainly absent, or the OS refused to look (a parent not
// searchable).
std::string WhyMissing(const fs::file_status& st, const std::error_code& ec) {
  if (st.type() == fs::file_type::not_found || !ec) return "does not exist";
  return ec.message();
}

// Absolute and normalized, without a trailing '/'.
std::string Resolve(const fs::path& base_dir, const std::string& p) {
  fs::path out = fs::path(p).is_absolute() ? fs::path(p) : base_dir / p;
  out = out.lexically_normal();
  if (!out.has_filename() && out != out.root_path()) out = out.parent_path();
  return out.string();
}

using Problems = SpecProblems;

struct Field {
  YAML::Node key;
  YAML::Node value;
};

// One mapping of the spec (the top level, `input`, `worker`, ...) after its keys were checked.
struct Section {
  std::string path;  // "" for the top level
  int line = 1;      // where it starts; "missing key" problems point here
  std::map<std::string, Field, std::less<>> fields;
  // Not a mapping (already reported): its required keys are not reported missing on top of that.
  bool malformed = false;

  std::string KeyPath(std::string_view key) const {
    return path.empty() ? std::string(key) : path + "." + std::string(key);
  }
  const Field* Find(std::string_view key) const {
    auto it = fields.find(key);
    return it == fields.end() ? nullptr : &it->second;
  }
};

// Typed reads from a Section. Each returns false only when the key is present and wrong (the
// problem is recorded and the default stays); an absent key keeps the default and returns true,
// so that cross-field checks can run on whatever values are known to be good.
class Reader {
 public:
  explicit Reader(Problems* problems) : problems_(problems) {}

  Section Open(const YAML::Node& node, std::string path, int line,
               std::span<const std::string_view> known) {
    Section s{std::move(path), line, {}, false};
    if (!node.IsDefined() || node.IsNull()) return s;  // `input:` with nothing under it: defaults
    if (!node.IsMap()) {
      problems_->Expected(line, s.path.empty() ? "(top level)" : s.path, "a mapping of keys",
                          Describe(node));
      s.malformed = true;
      return s;
    }
    for (auto it = node.begin(); it != node.end(); ++it) {
      const YAML::Node& key = it->first;
      int key_line = LineOf(key, line);
      if (!key.IsScalar()) {
        problems_->Expected(key_line, s.path.empty() ? "(top level)" : s.path, "a key name",
                            Describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        problems_->Add(key_line, s.KeyPath(name), UnknownKeyMessage(s.path, known, name));
        continue;
      }
      if (const Field* first = s.Find(name)) {
        problems_->Add(
            key_line, s.KeyPath(name),
            "duplicate key (first set on line " + std::to_string(LineOf(first->key, line)) + ")");
        continue;
      }
      s.fields.emplace(name, Field{key, it->second});
    }
    return s;
  }

  // Reports a required key that is absent.
  void Missing(const Section& s, std::string_view key, std::string_view expected) {
    if (s.malformed) return;
    problems_->Expected(s.line, s.KeyPath(key), expected, "nothing");
  }

  // An integer >= lo; with `max`, also <= *max (a bound of the key's own, named in the message).
  template <typename T>
  bool Int(const Section& s, std::string_view key, int64_t lo, T* out,
           std::optional<int64_t> max = std::nullopt) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    const int64_t hi = std::numeric_limits<T>::max();
    std::optional<int64_t> v = ParseInt(f->value);
    if (max && (!v || *v < lo || *v > *max)) return Wrong(s, key, *f, IntRange(lo, *max));
    if (!v || *v < lo) return Wrong(s, key, *f, IntRange(lo, std::nullopt));
    if (*v > hi)
      return Wrong(s, key, *f,
                   IntRange(lo, std::nullopt) + " (at most " + std::to_string(hi) + ")");
    *out = static_cast<T>(*v);
    return true;
  }

  bool Uint64(const Section& s, std::string_view key, uint64_t* out) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    std::optional<uint64_t> v = ParseUint(f->value);
    if (!v) return Wrong(s, key, *f, "a non-negative integer");
    *out = *v;
    return true;
  }

  bool Bool(const Section& s, std::string_view key, bool* out) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    bool b = false;
    if (!f->value.IsScalar() || IsQuoted(f->value) || !YAML::convert<bool>::decode(f->value, b)) {
      return Wrong(s, key, *f, "true or false");
    }
    *out = b;
    return true;
  }

  bool String(const Section& s, std::string_view key, std::string* out,
              std::string_view expected = "a string") {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    if (!f->value.IsScalar()) return Wrong(s, key, *f, expected);
    *out = f->value.Scalar();
    return true;
  }

  // A list of strings; `lines` gets each item's line, for problems found later about one item.
  bool StringList(const Section& s, std::string_view key, std::string_view expected,
                  std::vector<std::string>* out, std::vector<int>* lines) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    const int key_line = LineOf(f->key, s.line);
    if (!f->value.IsSequence() || f->value.size() == 0) return Wrong(s, key, *f, expected);
    bool ok = true;
    size_t index = 0;
    for (const YAML::Node& item : f->value) {
      std::string item_path = s.KeyPath(key) + "[" + std::to_string(index++) + "]";
      int item_line = LineOf(item, key_line);
      if (!item.IsScalar()) {
        problems_->Expected(item_line, item_path, "a string", Describe(item));
        ok = false;
        continue;
      }
      out->push_back(item.Scalar());
      lines->push_back(item_line);
    }
    return ok;
  }

  bool EnvMap(const Section& s, std::string_view key, std::map<std::string, std::string>* out) {
    const Field* f = s.Find(key);
    if (f == nullptr) return true;
    if (!f->value.IsMap()) {
      if (f->value.IsNull()) return true;  // `env:` with nothing under it
      return Wrong(s, key, *f, "a mapping of variable names to strings");
    }
    const int key_line = LineOf(f->key, s.line);
    bool ok = true;
    for (auto it = f->value.begin(); it != f->value.end(); ++it) {
      const YAML::Node& name = it->first;
      const YAML::Node& value = it->second;
      int line = LineOf(name, key_line);
      if (!name.IsScalar() || !IsEnvName(name.Scalar())) {
        problems_->Expected(line, s.KeyPath(key), "a variable name matching [A-Za-z_][A-Za-z0-9_]*",
                            Describe(name));
        ok = false;
        continue;
      }
      std::string path = s.KeyPath(key) + "." + name.Scalar();
      if (!value.IsScalar()) {
        problems_->Expected(line, path, "a string", Describe(value));
        ok = false;
        continue;
      }
      if (!out->emplace(name.Scalar(), value.Scalar()).second) {
        problems_->Add(line, path, "duplicate key");
        ok = false;
      }
    }
    return ok;
  }

  // Line of `key` in `s`, or of the section when the key is absent.
  int LineOfKey(const Section& s, std::string_view key) const {
    const Field* f = s.Find(key);
    return f == nullptr ? s.line : LineOf(f->key, s.line);
  }

 private:
  bool Wrong(const Section& s, std::string_view key, const Field& f, std::string_view expected) {
    problems_->Expected(LineOf(f.key, s.line), s.KeyPath(key), expected, Describe(f.value));
    return false;
  }

  Problems* problems_;
};

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
Lines ReadSections(const YAML::Node& root, Reader& r, Problems& problems, JobSpec& spec) {
  Section top = r.Open(root, "", LineOf(root, 1), kTopKeys);
  auto sub = [&](std::string_view key, std::span<const std::string_view> known) {
    const Field* f = top.Find(key);
    if (f == nullptr) return Section{std::string(key), top.line, {}, top.malformed};
    return r.Open(f->value, std::string(key), LineOf(f->key, top.line), known);
  };
  Lines lines;

  if (top.Find("name") == nullptr) {
    r.Missing(top, "name", kNameRule);
  } else if (r.String(top, "name", &spec.name, kNameRule) && !IsJobName(spec.name)) {
    problems.Expected(r.LineOfKey(top, "name"), "name", kNameRule, Quote(spec.name));
    spec.name.clear();
  }
  r.Int(top, "nodes", 1, &spec.nodes);
  std::string kind = "command";
  if (r.String(top, "kind", &kind, "one of command, infer")) {
    if (kind == "command") {
      spec.kind = JobKind::kCommand;
    } else if (kind == "infer") {
      spec.kind = JobKind::kInfer;
    } else {
      problems.Expected(r.LineOfKey(top, "kind"), "kind", "one of command, infer", Quote(kind));
    }
  }
  // The infer section belongs to the data plane (infer/infer_spec.h checks its contents).
  if (const Field* f = top.Find("infer")) {
    if (spec.kind != JobKind::kInfer) {
      problems.Add(LineOf(f->key, top.line), "infer", "only with kind: infer");
    } else if (!f->value.IsMap()) {
      problems.Expected(LineOf(f->key, top.line), "infer", "a mapping", Describe(f->value));
    }
  } else if (spec.kind == JobKind::kInfer) {
    problems.Add(r.LineOfKey(top, "kind"), "infer", "missing (kind: infer needs an infer section)");
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
  if (worker.Find("command") == nullptr && spec.kind == JobKind::kInfer) {
    spec.worker.command = {InferWorkerPath(), "--spec", spec.spec_path};
    lines.command_ok = false;  // ours: nothing of the user's to check
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
  if (spec.kind == JobKind::kInfer) {
    // The math libraries under libtorch size their thread pools from the environment when they
    // load, before the worker's main() runs: give them infer.intra_op_threads from the start
    // (the worker re-executes itself to set them when they are missing, costing a second load of
    // libtorch). infer/infer_spec.cc validates the value; a bad one is left to its message.
    std::string threads = "1";
    if (const Field* f = top.Find("infer"); f != nullptr && f->value.IsMap()) {
      const YAML::Node t = f->value["intra_op_threads"];
      if (std::optional<int64_t> v = t ? ParseInt(t) : std::nullopt; v && *v >= 1) {
        threads = std::to_string(*v);
      }
    }
    for (const char* var :
         {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BATON_INFER_THREADS"}) {
      spec.worker.env.emplace(var, threads);  // a value the user set wins
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
  auto port = [&](std::string_view key, int32_t* out) {
    const Field* f = master.Find(key);
    if (f == nullptr) return true;
    std::optional<int64_t> v = ParseInt(f->value);
    if (!v || *v < 0 || *v > kMaxPort) {
      problems.Expected(LineOf(f->key, master.line), master.KeyPath(key), IntRange(0, kMaxPort),
                        Describe(f->value));
      return false;
    }
    *out = static_cast<int32_t>(*v);
    return true;
  };
  const bool port_ok = port("port", &spec.master.port);
  const bool metrics_port_ok = port("metrics_port", &spec.master.metrics_port);
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

std::string InferWorkerPath() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "baton-infer-worker";  // looked up on PATH
  return (self.parent_path() / "baton-infer-worker").string();
}

Result<JobSpec> ParseJobSpec(const std::string& yaml_text, const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    // One line is all a parse error gives: yaml-cpp stops at the first one.
    return Status::InvalidArgument(path + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) +
                                   ": malformed YAML: " + e.msg);
  }

  JobSpec spec;
  std::error_code ec;
  const fs::path absolute = fs::absolute(path, ec).lexically_normal();
  if (ec) return Status::InvalidArgument(path + ": cannot make the path absolute: " + ec.message());
  spec.spec_path = absolute.string();
  spec.base_dir = absolute.parent_path().string();

  Problems problems(path);
  Reader reader(&problems);
  try {
    Lines lines = ReadSections(root, reader, problems, spec);
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
