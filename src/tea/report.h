// Rendering an AlignReport: a JSON document (for --out) and key=value lines (for people and
// benchmark scripts).
#pragma once

#include <string>

#include "tea/align.h"

namespace baton::tea {

std::string ReportJson(const AlignReport& report, const AlignOptions& opt);

// A line naming the CPU features and the kernel path ("cpu_features=... kernel=avx2
// kernel_source=... arithmetic=..."), one line per round: "round=1 seeds=400 hits1=0.541 hits10=...
// mrr=... misses=... elapsed_s=... <phase>_s=..." and a final "total_s=... peak_rss_mb=..." line.
std::string ReportLines(const AlignReport& report);

// report.predictions as tab-separated text: a `#` comment line (round, k, what the score is), a
// header line, then one line per (source, rank):
//   source_id  source_name  rank  candidate_id  candidate_name  score  partner_id
// rank is 1-based, score the Sinkhorn value, partner_id the known partner (-1: none known).
// Names come from ent_ids_1/2 (empty without them); tabs or newlines in them become spaces.
std::string PredictionsTsv(const AlignReport& report, const Dataset& data);

}  // namespace baton::tea
