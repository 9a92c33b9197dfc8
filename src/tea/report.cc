#include "tea/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/process_stats.h"

namespace baton::tea {
namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

nlohmann::json MetricsJson(const Metrics& m) {
  return {
      {"n", m.n}, {"misses", m.misses}, {"hits1", m.hits1}, {"hits10", m.hits10}, {"mrr", m.mrr}};
}

}  // namespace

std::string ReportJson(const AlignReport& r, const AlignOptions& opt) {
  nlohmann::json j;
  j["options"] = {{"seeds", opt.num_seeds},       {"rounds", opt.rounds},
                  {"threads", opt.threads},       {"seed", opt.seed},
                  {"faithful", opt.faithful},     {"fp32", opt.fp32},
                  {"simt_dedup", opt.simt_dedup}, {"topk", opt.topk},
                  {"kernel", opt.kernel},         {"unmatched", opt.unmatched}};
  j["kernel"] = {{"path", r.kernel},
                 {"source", r.kernel_source},
                 {"reduced_precision", r.reduced_precision},
                 {"cpu_features", r.cpu_features}};
  j["test_pairs"] = r.test_pairs;
  j["sources"] = r.sources;
  j["candidates"] = r.candidates;
  j["width"] = r.width;
  j["setup_s"] = r.setup_s;
  j["total_s"] = r.total_s;
  j["peak_rss_mb"] = static_cast<double>(PeakRssBytes()) / (1 << 20);
  nlohmann::json rounds = nlohmann::json::array();
  for (const RoundResult& rr : r.rounds) {
    nlohmann::json phases = nlohmann::json::object();
    for (const auto& [name, s] : rr.phase_s) phases[name] = s;
    rounds.push_back({{"round", rr.round},
                      {"seeds", rr.seeds},
                      {"all", MetricsJson(rr.all)},
                      {"never_pseudo", MetricsJson(rr.never_pseudo)},
                      {"new_pseudo_pairs", rr.new_pseudo_pairs},
                      {"new_pseudo_correct", rr.new_pseudo_correct},
                      {"elapsed_s", rr.elapsed_s},
                      {"phase_s", phases}});
  }
  j["rounds"] = rounds;
  return j.dump(2) + "\n";
}

std::string ReportLines(const AlignReport& r) {
  std::ostringstream o;
  o << "cpu_features=" << r.cpu_features << " kernel=" << r.kernel
    << " kernel_source=" << r.kernel_source
    << " arithmetic=" << (r.reduced_precision ? "int8_search+bf16_projection" : "fp32") << "\n";
  o << "sources=" << r.sources << " candidates=" << r.candidates << " test_pairs=" << r.test_pairs
    << "\n";
  for (const RoundResult& rr : r.rounds) {
    o << "round=" << rr.round << " seeds=" << rr.seeds << " hits1=" << Fixed(rr.all.hits1, 3)
      << " hits10=" << Fixed(rr.all.hits10, 3) << " mrr=" << Fixed(rr.all.mrr, 3)
      << " misses=" << rr.all.misses << " never_pseudo_n=" << rr.never_pseudo.n
      << " never_pseudo_hits1=" << Fixed(rr.never_pseudo.hits1, 3)
      << " new_pseudo=" << rr.new_pseudo_pairs << " new_pseudo_correct=" << rr.new_pseudo_correct
      << " elapsed_s=" << Fixed(rr.elapsed_s, 2);
    for (const auto& [name, s] : rr.phase_s) o << " " << name << "_s=" << Fixed(s, 2);
    o << "\n";
  }
  o << "setup_s=" << Fixed(r.setup_s, 2) << " total_s=" << Fixed(r.total_s, 2)
    << " peak_rss_mb=" << Fixed(static_cast<double>(PeakRssBytes()) / (1 << 20), 0) << "\n";
  return o.str();
}

std::string PredictionsTsv(const AlignReport& r, const Dataset& data) {
  const Predictions& p = r.predictions;
  auto name = [&](int32_t id) {
    std::string s = id >= 0 && static_cast<size_t>(id) < data.names.size() ? data.names[id] : "";
    for (char& ch : s) {
      if (ch == '\t' || ch == '\n' || ch == '\r') ch = ' ';
    }
    return s;
  };
  std::string out = "# baton tea align predictions: round=" + std::to_string(p.round) +
                    " k=" + std::to_string(p.k) + " sources=" + std::to_string(p.source.size()) +
                    " score=sinkhorn\n";
  out += "source_id\tsource_name\trank\tcandidate_id\tcandidate_name\tscore\tpartner_id\n";
  char buf[32];
  for (size_t i = 0; i < p.source.size(); ++i) {
    const std::string src = std::to_string(p.source[i]) + "\t" + name(p.source[i]) + "\t";
    for (int j = 0; j < p.k; ++j) {
      const int32_t c = p.candidate[i * p.k + j];
      std::snprintf(buf, sizeof(buf), "%.6g", p.score[i * p.k + j]);
      out += src + std::to_string(j + 1) + "\t" + std::to_string(c) + "\t" + name(c) + "\t" + buf +
             "\t" + std::to_string(p.partner[i]) + "\n";
    }
  }
  return out;
}

}  // namespace baton::tea
