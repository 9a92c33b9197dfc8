// LightTEA end to end (spec §1): features from both aspects, candidate search, temporal re-scoring,
// Sinkhorn, evaluation, and the iterative rounds that add confident pseudo-seeds.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "tea/dataset.h"
#include "tea/graph.h"
#include "tea/metrics.h"

namespace baton::tea {

struct AlignOptions {
  int num_seeds = 400;  // first pairs of sup_pairs ++ ref_pairs used as seeds; the rest is tested
  int rounds = 3;       // iterative-learning rounds (1 disables pseudo-labelling)
  int threads = 2;
  uint64_t seed = 12306;  // every random draw derives from it: same seed, same result
  // Reproduce the official code's quirks Q1–Q6 (spec §14) instead of what the paper intends.
  bool faithful = false;
  int depth = 2;     // propagation steps (default mode only; faithful always uses 2, Q8)
  int proj_dim = 0;  // heads of the triple view; 0 = 170 for 5-column (YAGO) data, 256 otherwise
  int label_dim = 512;
  int mini_dim = 16;
  double alpha = 0.6;  // weight of the temporal aspect when fusing the two aspects
  double beta = 0.4;   // weight of the temporal similarity in the candidate score
  int topk = 500;
  double temperature = 0.02;
  int sinkhorn_iterations = 15;
  double pseudo_threshold = 0.8;  // Sinkhorn value a pair needs to become a pseudo-seed
  // fp32 throughout, as the official code: fp32 BLAS projections and brute-force fp32 search.
  // Default: bf16 projections and int8 candidate search with fp32 re-scoring (docs/tea.md has the
  // accuracy comparison), with the kernels of `kernel`.
  bool fp32 = false;
  // Kernel path (cpu.h): "auto" (BATON_TEA_KERNEL if set, else the best this CPU has; fp32 on a
  // CPU without AVX2), or "avx512" | "avx2" | "generic". A path the CPU cannot run fails Align.
  std::string kernel = "auto";
  bool simt_dedup = false;  // count each (entity, time) of a fact once (quirk Q3 off)
  // Sources and candidates. false: the test pairs' KG1 and KG2 entities (the official protocol).
  // true: every KG1 entity outside the seeds against every KG2 entity outside the seeds, so
  // entities with no known partner are aligned too; num_seeds may then be all the pairs (no test
  // labels: metrics have n = 0), and the metrics cover the sources with a test partner, ranked
  // among all candidates. Not with `faithful`.
  bool unmatched = false;
  // Keep the predictions_k best candidates of every source from the last round in
  // AlignReport::predictions (0: none).
  int predictions_k = 0;
};

// The alignment itself: for every source entity its best candidates, best first, by the final
// round's Sinkhorn value (the score the metrics rank by), ties by lower candidate position.
struct Predictions {
  int round = 0;                   // the round they come from (the last one that ran)
  int k = 0;                       // candidates per source (predictions_k, at most the search's k)
  std::vector<int32_t> source;     // entity ids (KG1)
  std::vector<int32_t> partner;    // the known partner's entity id (test pairs), -1 if none
  std::vector<int32_t> candidate;  // source.size() x k entity ids (KG2)
  std::vector<float> score;        // source.size() x k Sinkhorn values, descending per source
};

struct RoundResult {
  int round = 0;                 // 1-based
  int64_t seeds = 0;             // seed pairs the features were built from (given + pseudo)
  Metrics all;                   // over the whole test set (the official protocol)
  Metrics never_pseudo;          // over test pairs whose left entity was never a pseudo-seed
  int64_t new_pseudo_pairs = 0;  // emitted at the end of this round
  int64_t new_pseudo_correct = 0;
  double elapsed_s = 0;  // wall seconds since Align() started, at the end of evaluation
  std::vector<std::pair<std::string, double>> phase_s;  // wall seconds per phase in this round
};

struct AlignReport {
  std::string kernel;             // kernel path that ran (cpu.h)
  std::string kernel_source;      // who chose it: "cpu", "BATON_TEA_KERNEL" or "option"
  std::string cpu_features;       // CpuFeatureList()
  bool reduced_precision = true;  // int8 search and bf16 projections (false: fp32 throughout)
  GraphStats stats;
  int64_t test_pairs = 0;
  int64_t sources = 0;      // entities aligned (test-left entities unless `unmatched`)
  int64_t candidates = 0;   // entities they are aligned against
  Predictions predictions;  // empty unless predictions_k > 0
  int width = 0;            // feature width
  double setup_s = 0;       // graph and time profiles
  std::vector<RoundResult> rounds;
  double total_s = 0;  // whole Align() call
};

// Quirk Q5: position of each of `ids` in CPython's iteration order of set(ids), i.e. ascending
// (id mod T) with T the set's final power-of-two table size. Exact for distinct non-negative ids
// that do not collide modulo T (true of every split of the datasets in the spec); used by
// faithful mode's first pseudo-labelling step (Q4).
int64_t CPythonSetTableSize(int64_t n);
std::vector<int32_t> SetIterationPositions(const std::vector<int32_t>& ids);

// Quirk Q5 after removals: the indices i with !removed[i], in the order CPython lists what is left
// of the set. Removing keeps the table, so the rest keep their order: ascending set_pos[i], with
// set_pos from SetIterationPositions over all the ids.
std::vector<int32_t> RemainingInSetOrder(const std::vector<int32_t>& set_pos,
                                         const std::vector<char>& removed);

// Aligns `data` (already loaded). Fails on bad options (e.g. seeds >= pairs, a kernel path this
// CPU cannot run).
Result<AlignReport> Align(const Dataset& data, const AlignOptions& opt);

}  // namespace baton::tea
