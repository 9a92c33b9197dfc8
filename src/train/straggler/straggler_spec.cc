#include "train/straggler/straggler_spec.h"

#include <algorithm>
#include <cmath>

#include "common/files.h"
#include "spec/spec_problems.h"

namespace baton::train {
namespace {

constexpr std::string_view kStragglerKeys[] = {"rules",          "window",
                                               "report_ms",      "threshold",
                                               "confirm",        "persistent_after_s",
                                               "min_gain",       "min_batch",
                                               "max_batch",      "micro_batch",
                                               "speeds",         "restart_margin",
                                               "restart_cost_s", "restarts_per_hour",
                                               "inject",         "emulate_us_per_sample"};
constexpr std::string_view kInjectKeys[] = {"rank",    "node", "slowdown",
                                            "start_s", "on_s", "period_s"};

void ReadInject(schema::Reader& r, const schema::Section& s, StragglerSpec* out) {
  const schema::Field* f = s.Find("inject");
  if (f == nullptr) return;
  if (!f->value.IsSequence()) {
    r.Wrong(s, "inject", "a list of {rank or node, slowdown, start_s, on_s, period_s}");
    return;
  }
  for (size_t i = 0; i < f->value.size(); ++i) {
    const YAML::Node item = f->value[i];
    const schema::Section m = r.Open(item, s.KeyPath("inject") + "[" + std::to_string(i) + "]",
                                     schema::LineOf(item, r.LineOfKey(s, "inject")), kInjectKeys);
    if (m.malformed) continue;
    InjectedSlowdown inj;
    if (m.Has("rank") == m.Has("node")) {
      r.problems().Add(m.line, m.KeyPath("rank"),
                       "expected exactly one of rank (a generation rank) and node (a node id, "
                       "whose workers all slow down)");
    }
    if (!m.Has("slowdown")) r.Missing(m, "slowdown", "how many times slower its compute gets");
    r.Int(m, "rank", 0, &inj.rank, 1 << 20);
    r.String(m, "node", &inj.node, "a node id");
    r.Number(m, "slowdown", 1.0, 1000.0, &inj.slowdown);
    r.Number(m, "start_s", 0.0, 1e9, &inj.start_s);
    r.Number(m, "on_s", 0.0, 1e9, &inj.on_s);
    r.Number(m, "period_s", 0.0, 1e9, &inj.period_s);
    if (inj.period_s > 0 && (inj.on_s <= 0 || inj.on_s >= inj.period_s)) {
      r.problems().Add(m.line, m.KeyPath("on_s"),
                       "expected 0 < on_s < period_s for a straggler that comes and goes");
    }
    out->inject.push_back(inj);
  }
}

}  // namespace

bool InjectedSlowdown::ActiveAt(double seconds) const {
  if (seconds < start_s) return false;
  double t = seconds - start_s;
  if (period_s > 0) t = std::fmod(t, period_s);
  return on_s <= 0 || t < on_s;
}

std::span<const std::string_view> StragglerKeys() { return kStragglerKeys; }

bool StragglerSpec::has(StragglerRule rule) const {
  return std::find(rules.begin(), rules.end(), rule) != rules.end();
}

double InjectedDelayMs(const StragglerSpec& spec, int rank, std::string_view node, double seconds,
                       double compute_ms, int64_t rows) {
  double slowdown = 1;
  for (const InjectedSlowdown& inj : spec.inject) {
    const bool applies = inj.rank >= 0 ? inj.rank == rank : inj.node == node;
    if (applies && inj.ActiveAt(seconds)) slowdown = std::max(slowdown, inj.slowdown);
  }
  const double emulated = static_cast<double>(rows) * spec.emulate_us_per_sample / 1000.0;
  return (slowdown - 1) * compute_ms + emulated * slowdown;
}

void ReadStragglerSpec(schema::Reader& r, const schema::Section& train, int64_t global_batch,
                       StragglerSpec* out) {
  if (!train.Has("straggler")) return;
  const schema::Section s = r.Sub(train, "straggler", kStragglerKeys);
  if (s.malformed) return;
  std::vector<std::string> rules;
  std::vector<int> lines;
  if (s.Has("rules") &&
      r.StringList(s, "rules", "a list of rules: adjust_batch, kill_restart, profile", &rules,
                   &lines)) {
    for (size_t i = 0; i < rules.size(); ++i) {
      StragglerRule rule;
      if (rules[i] == "adjust_batch") {
        rule = StragglerRule::kAdjustBatch;
      } else if (rules[i] == "kill_restart") {
        rule = StragglerRule::kKillRestart;
      } else if (rules[i] == "profile") {
        rule = StragglerRule::kProfile;
      } else {
        r.problems().Add(
            lines[i], s.KeyPath("rules"),
            "expected adjust_batch, kill_restart or profile, got " + schema::Quote(rules[i]));
        continue;
      }
      if (out->has(rule)) {
        r.problems().Add(lines[i], s.KeyPath("rules"),
                         "expected each rule once, got " + schema::Quote(rules[i]) + " twice");
        continue;
      }
      out->rules.push_back(rule);
    }
    if (out->has(StragglerRule::kAdjustBatch) && out->has(StragglerRule::kProfile)) {
      r.problems().Add(r.LineOfKey(s, "rules"), s.KeyPath("rules"),
                       "adjust_batch (non-dedicated clusters) and profile (dedicated ones) both "
                       "set the split: choose one");
    }
  }
  r.Int(s, "window", 2, &out->window, 1000);
  r.Int(s, "report_ms", 10, &out->report_ms, 60000);
  r.Number(s, "threshold", 1.05, 100.0, &out->threshold);
  r.Int(s, "confirm", 1, &out->confirm, 1000);
  r.Number(s, "persistent_after_s", 0.0, 1e9, &out->persistent_after_s);
  r.Number(s, "min_gain", 0.0, 0.9, &out->min_gain);
  r.Int(s, "min_batch", 1, &out->min_batch, global_batch);
  r.Int(s, "max_batch", 1, &out->max_batch, global_batch);
  r.Int(s, "micro_batch", 1, &out->micro_batch, global_batch);
  if (out->min_batch > 0 && out->max_batch > 0 && out->min_batch > out->max_batch) {
    r.problems().Add(r.LineOfKey(s, "max_batch"), s.KeyPath("max_batch"),
                     "expected at least min_batch (" + std::to_string(out->min_batch) + ")");
  }
  if (const schema::Field* f = s.Find("speeds"); f != nullptr) {
    bool ok = f->value.IsSequence() && f->value.size() > 0;
    for (size_t i = 0; ok && i < f->value.size(); ++i) {
      const std::optional<double> v = schema::ParseNumber(f->value[i]);
      ok = v && *v >= 1e-6 && *v <= 1e6;
      if (ok) out->speeds.push_back(*v);
    }
    if (!ok) {
      out->speeds.clear();
      r.Wrong(s, "speeds", "a list of positive numbers (1e-6..1e6), one per rank");
    }
  }
  r.Number(s, "restart_margin", 0.0, 1000.0, &out->restart_margin);
  r.Number(s, "restart_cost_s", 0.0, 1e6, &out->restart_cost_s);
  r.Int(s, "restarts_per_hour", 0, &out->restarts_per_hour, 1000);
  ReadInject(r, s, out);
  r.Number(s, "emulate_us_per_sample", 0.0, 1e7, &out->emulate_us_per_sample);
}

Result<StragglerSpec> LoadStragglerSpec(const std::string& path, int64_t* global_batch) {
  BATON_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  BATON_ASSIGN_OR_RETURN(schema::Document doc, schema::ParseDocument(text, path));
  SpecProblems p(path);
  schema::Reader r(&p);
  StragglerSpec spec;
  try {
    const schema::Section top = r.Borrow(doc.root, "", 1);
    const schema::Section train = r.BorrowSub(top, "train");
    r.Int(train, "global_batch", 1, global_batch, int64_t{1} << 24);
    ReadStragglerSpec(r, train, *global_batch, &spec);
  } catch (const YAML::Exception& e) {
    return Status::Internal(path + ": unexpected YAML error: " + e.what());
  }
  if (!p.empty()) return p.ToStatus();
  return spec;
}

}  // namespace baton::train
