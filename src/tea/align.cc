#include "tea/align.h"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "tea/features.h"
#include "tea/linalg.h"
#include "tea/memory.h"
#include "tea/parallel.h"
#include "tea/random.h"
#include "tea/sinkhorn.h"
#include "tea/temporal.h"
#include "tea/topk.h"

namespace baton::tea {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Rows `ids` of the fused features (1 - alpha) * fr + alpha * ft, each normalised.
void FusedRows(const Mat& fr, const Mat& ft, const std::vector<int32_t>& ids, double alpha,
               int threads, KernelPath path, Mat* out_mat) {
  ReshapeLarge(out_mat, static_cast<int64_t>(ids.size()), fr.cols());
  Mat& out = *out_mat;
  const float a = static_cast<float>(alpha), b = static_cast<float>(1.0 - alpha);
  ParallelFor(out.rows(), 256, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t i = r0; i < r1; ++i) {
      const float* x = &fr(ids[i], 0);
      const float* y = &ft(ids[i], 0);
      float* o = &out(i, 0);
      for (int64_t c = 0; c < out.cols(); ++c) o[c] = b * x[c] + a * y[c];
    }
  });
  NormalizeRows(out.data(), out.rows(), out.cols(), out.cols(), threads, path);
}

// Candidate scores (1 - beta) * cos + beta * simt for a rows x k support. simt_left[i] and
// simt_right[c] name the entities whose temporal similarity is used for row i and column c.
std::vector<float> Rescore(const TopK& top, const std::vector<int32_t>& simt_left,
                           const std::vector<int32_t>& simt_right, const TimeProfiles& profiles,
                           double beta, int threads) {
  std::vector<float> s;
  ResizeLarge(&s, top.score.size());
  const int k = top.k;
  ParallelFor(top.rows, 256, threads, [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> scratch, ents(k);
    std::vector<float> simt(k);
    for (int64_t i = r0; i < r1; ++i) {
      for (int j = 0; j < k; ++j) ents[j] = simt_right[top.idx[i * k + j]];
      profiles.DiceMany(simt_left[i], ents.data(), k, simt.data(), &scratch);
      for (int j = 0; j < k; ++j) {
        s[i * k + j] = static_cast<float>((1.0 - beta) * top.score[i * k + j] + beta * simt[j]);
      }
    }
  });
  return s;
}

// --unmatched: every KG1 entity outside the seeds is a source, every KG2 entity outside the seeds a
// candidate (ascending ids); the test pairs, if any, give the partners that are known.
void SourcesAndCandidates(const Dataset& data, const Split& split, std::vector<int32_t>* left,
                          std::vector<int32_t>* right, std::vector<int32_t>* truth) {
  std::vector<char> seed(data.side.size(), 0);
  for (const auto& [a, b] : split.seeds) seed[a] = seed[b] = 1;
  std::vector<int32_t> pos(data.side.size(), -1);
  for (size_t e = 0; e < data.side.size(); ++e) {
    if (seed[e]) continue;
    if (data.side[e] == 1) left->push_back(static_cast<int32_t>(e));
    if (data.side[e] == 2) {
      pos[e] = static_cast<int32_t>(right->size());
      right->push_back(static_cast<int32_t>(e));
    }
  }
  std::vector<int32_t> partner(data.side.size(), -1);
  for (const auto& [a, b] : split.test) partner[a] = b;
  for (int32_t e : *left) truth->push_back(partner[e] >= 0 ? pos[partner[e]] : -1);
}

// The k best candidates of every source by the round's final (Sinkhorn) values, ties by lower
// candidate position, as Ranks orders them.
Predictions TopPredictions(const std::vector<float>& p, const TopK& top,
                           const std::vector<int32_t>& left, const std::vector<int32_t>& right,
                           const std::vector<int32_t>& truth, int k, int round) {
  Predictions out;
  out.round = round;
  out.k = std::min(k, top.k);
  out.source = left;
  out.partner.resize(left.size());
  for (size_t i = 0; i < left.size(); ++i) out.partner[i] = truth[i] >= 0 ? right[truth[i]] : -1;
  out.candidate.resize(left.size() * out.k);
  out.score.resize(left.size() * out.k);
  std::vector<int32_t> order(top.k);
  for (int64_t i = 0; i < top.rows; ++i) {
    const float* v = p.data() + i * top.k;
    const int32_t* c = top.idx.data() + i * top.k;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + out.k, order.end(), [&](int32_t a, int32_t b) {
      return v[a] > v[b] || (v[a] == v[b] && c[a] < c[b]);
    });
    for (int j = 0; j < out.k; ++j) {
      out.candidate[i * out.k + j] = right[c[order[j]]];
      out.score[i * out.k + j] = v[order[j]];
    }
  }
  return out;
}

}  // namespace

// Quirk Q5: CPython iterates a set of small non-negative ints in ascending (id mod table size)
// order. The table size follows set_add_entry's growth rule for n insertions.
int64_t CPythonSetTableSize(int64_t n) {
  int64_t size = 8;
  for (int64_t used = 1; used <= n; ++used) {
    if (used * 5 >= (size - 1) * 3) {
      const int64_t minused = used > 50000 ? used * 2 : used * 4;
      size = 8;
      while (size <= minused) size <<= 1;
    }
  }
  return size;
}

std::vector<int32_t> SetIterationPositions(const std::vector<int32_t>& ids) {
  const int64_t t = CPythonSetTableSize(static_cast<int64_t>(ids.size()));
  std::vector<int32_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return ids[a] % t < ids[b] % t; });
  std::vector<int32_t> pos(ids.size());
  for (size_t j = 0; j < order.size(); ++j) pos[order[j]] = static_cast<int32_t>(j);
  return pos;
}

std::vector<int32_t> RemainingInSetOrder(const std::vector<int32_t>& set_pos,
                                         const std::vector<char>& removed) {
  std::vector<int32_t> by_pos(set_pos.size());
  for (size_t i = 0; i < set_pos.size(); ++i) by_pos[set_pos[i]] = static_cast<int32_t>(i);
  std::vector<int32_t> out;
  for (int32_t i : by_pos) {
    if (!removed[i]) out.push_back(i);
  }
  return out;
}

Result<AlignReport> Align(const Dataset& data, const AlignOptions& opt) {
  if (opt.rounds < 1 || opt.threads < 1 || opt.topk < 1 || opt.depth < 1 ||
      opt.sinkhorn_iterations < 0 || opt.label_dim < 1 || opt.mini_dim < 1 || opt.proj_dim < 0) {
    return Status::InvalidArgument(
        "tea align: rounds, threads, topk, depth and dimensions must be positive");
  }
  if (opt.unmatched && opt.faithful) {
    return Status::InvalidArgument(
        "tea align: --unmatched aligns entities outside the official protocol; it cannot be "
        "combined with --faithful");
  }
  if (opt.predictions_k < 0) {
    return Status::InvalidArgument("tea align: --predictions-k must not be negative");
  }
  BATON_ASSIGN_OR_RETURN(Split split, SplitPairs(data, opt.num_seeds, opt.unmatched));
  BATON_ASSIGN_OR_RETURN(KernelChoice kc, ResolveKernelPath(opt.kernel));
  const bool reduced = kc.reduced_precision && !opt.fp32;
  const auto t0 = Clock::now();
  AlignReport report;
  report.kernel = KernelPathName(kc.path);
  report.kernel_source = kc.source;
  report.cpu_features = CpuFeatureList();
  report.reduced_precision = reduced;

  Graph g = BuildGraph(data, opt.faithful);
  TimeProfileOptions tpo;
  tpo.credit_relation_id = opt.faithful;                           // Q2
  tpo.skip_time_zero = opt.faithful || data.time_zero_is_unknown;  // Q12
  tpo.dedup = opt.simt_dedup;                                      // Q3
  TimeProfiles profiles(data, g.node_size, tpo);
  report.stats = g.stats;
  report.setup_s = Since(t0);

  const bool yago =
      std::any_of(data.facts.begin(), data.facts.end(), [](const Fact& f) { return f.has_end; });
  FeatureOptions fo;
  fo.label_dim = opt.label_dim;
  fo.depth = opt.faithful ? 2 : opt.depth;  // Q8
  fo.proj_dim = opt.proj_dim > 0 ? opt.proj_dim : (yago ? opt.label_dim / 3 : opt.label_dim / 2);
  fo.mini_dim = opt.mini_dim;
  fo.threads = opt.threads;
  fo.bf16_projection = reduced;
  fo.kernel = kc.path;
  report.width = fo.proj_dim * fo.mini_dim;

  // Sources (queries, KG1) and candidates (KG2); truth[i] is the position of source i's partner
  // among the candidates, or -1 when it is not known.
  report.test_pairs = static_cast<int64_t>(split.test.size());
  std::vector<int32_t> left, right, truth;
  if (opt.unmatched) {
    SourcesAndCandidates(data, split, &left, &right, &truth);
  } else {
    for (size_t i = 0; i < split.test.size(); ++i) {
      left.push_back(split.test[i].first);
      right.push_back(split.test[i].second);
      truth.push_back(static_cast<int32_t>(i));  // the partner of test-left i is test-right i
    }
  }
  const int64_t n = static_cast<int64_t>(left.size());   // sources
  const int64_t m = static_cast<int64_t>(right.size());  // candidates
  if (n == 0 || m == 0) {
    return Status::InvalidArgument("tea align: nothing to align: " + std::to_string(n) +
                                   " source and " + std::to_string(m) +
                                   " candidate entities outside the seeds");
  }
  std::vector<char> labelled(n);
  for (int64_t i = 0; i < n; ++i) labelled[i] = truth[i] >= 0;
  report.sources = n;
  report.candidates = m;
  std::vector<std::pair<int32_t, int32_t>> seeds = split.seeds;
  std::vector<char> matched_left(n, 0), matched_right(m, 0);
  bool pseudo_done = false;  // has a pseudo-labelling step run yet
  // Q5 (faithful): positions of the test entities in the official candidate lists.
  std::vector<int32_t> set_pos_l, set_pos_r;
  if (opt.faithful) {
    set_pos_l = SetIterationPositions(left);
    set_pos_r = SetIterationPositions(right);
  }
  int k_eval = opt.topk;

  // Matrices reused across rounds (see FeatureWorkspace).
  FeatureWorkspace ws;
  Mat fr, ft, q, c;
  SearchOptions so;
  so.threads = opt.threads;
  so.exact = !reduced;
  so.kernel = kc.path;
  so.sorted = false;

  for (int round = 1; round <= opt.rounds; ++round) {
    RoundResult rr;
    rr.round = round;
    rr.seeds = static_cast<int64_t>(seeds.size());
    PhaseTimes pt;

    // --- Features of both aspects, fused for the test entities only.
    {
      AspectFeatures(g, g.rel, seeds, fo, DeriveSeed(opt.seed, round, 1), &ws, &fr, &pt);
      AspectFeatures(g, g.time, seeds, fo, DeriveSeed(opt.seed, round, 2), &ws, &ft, &pt);
      ScopedPhase phase(&pt, "fuse");
      FusedRows(fr, ft, left, opt.alpha, opt.threads, kc.path, &q);
      FusedRows(fr, ft, right, opt.alpha, opt.threads, kc.path, &c);
    }

    // The pseudo-labelling step of this round searches the not-yet-matched test entities with the
    // same features: a sub-block of the evaluation's scores, so it is answered by the same search.
    const bool pseudo_step = round < opt.rounds;
    std::vector<int32_t> rem_l, rem_r;
    for (int64_t i = 0; i < n; ++i) {
      if (!matched_left[i]) rem_l.push_back(static_cast<int32_t>(i));
    }
    for (int64_t j = 0; j < m; ++j) {
      if (!matched_right[j]) rem_r.push_back(static_cast<int32_t>(j));
    }
    if (opt.faithful) {
      // Q5: the official code searches the remaining candidates as listed by list(set), and its
      // flat search keeps the lowest list positions among equal scores. That decides real
      // cases: an entity without features (1,951 test-left and 524 test-right ones on
      // YAGO-WIKI20K, 400 seeds) scores exactly 0 against every candidate, so its 500
      // candidates, over which Sinkhorn spreads its mass, are the first 500 of the list.
      rem_r = RemainingInSetOrder(set_pos_r, matched_right);
    }
    // Q6: the official code shrinks k for good once fewer candidates than k remain.
    const int k_shrunk =
        opt.faithful ? static_cast<int>(std::min<int64_t>(k_eval, rem_l.size())) : k_eval;
    const int k_pseudo = static_cast<int>(
        std::min<int64_t>({opt.faithful ? k_shrunk : opt.topk, static_cast<int64_t>(rem_l.size()),
                           static_cast<int64_t>(rem_r.size())}));
    // Faithful mode searches the candidates in the official list order (above), which the
    // evaluation's test-ordered search cannot stand in for.
    const bool pseudo_reuses_eval =
        !opt.faithful && !pseudo_done && k_pseudo == std::min<int64_t>(k_eval, m);
    SubsetSearch subset;
    const bool want_subset = pseudo_step && !pseudo_reuses_eval && k_pseudo > 0;
    if (want_subset) {
      subset.rows = rem_l;
      subset.cols = rem_r;
      subset.k = k_pseudo;
    }

    // --- Evaluation on the full test set.
    so.k = k_eval;
    TopK top;
    {
      ScopedPhase phase(&pt, "search");
      top = TopKInnerProduct(q, c, so, &pt, want_subset ? &subset : nullptr);
    }
    std::vector<float> p;
    {
      ScopedPhase phase(&pt, "simt");
      p = Rescore(top, left, right, profiles, opt.beta, opt.threads);
    }
    {
      ScopedPhase phase(&pt, "sinkhorn");
      Sinkhorn(&p, top.idx, n, top.k, m, opt.temperature, opt.sinkhorn_iterations, opt.threads);
    }
    {
      ScopedPhase phase(&pt, "evaluate");
      std::vector<int32_t> ranks = Ranks(p, top.idx, n, top.k, truth);
      rr.all = Summarize(ranks, labelled);
      std::vector<char> never(n);
      for (int64_t i = 0; i < n; ++i) never[i] = labelled[i] && !matched_left[i];
      rr.never_pseudo = Summarize(ranks, never);
      if (opt.predictions_k > 0) {
        report.predictions = TopPredictions(p, top, left, right, truth, opt.predictions_k, round);
      }
    }
    rr.elapsed_s = Since(t0);

    // --- Pseudo-labelling among the entities not matched yet.
    if (pseudo_step && k_pseudo > 0) {
      ScopedPhase phase(&pt, "pseudo");
      k_eval = k_shrunk;
      std::vector<float> pp;
      const TopK* support = &top;
      if (pseudo_reuses_eval) {
        // Same features, same candidates: the evaluation's search is this step's search.
        pp = p;
        rem_l.resize(n);
        rem_r.resize(m);
        std::iota(rem_l.begin(), rem_l.end(), 0);
        std::iota(rem_r.begin(), rem_r.end(), 0);
      } else {
        const TopK& sub = subset.result;
        std::vector<int32_t> sl(rem_l.size()), sr(rem_r.size());
        // Q4: while every test entity is still a candidate, the official code looks simt up by
        // list position in the test-ordered matrix, pairing the wrong entities wherever the set
        // order differs from the test order. Row i (left[rem_l[i]]) sits at list position
        // set_pos_l[rem_l[i]] and column j at list position j (rem_r is in list order), so they
        // get the test entities at those positions.
        const bool q4 = opt.faithful && static_cast<int64_t>(rem_l.size()) == n;
        for (size_t i = 0; i < rem_l.size(); ++i) {
          sl[i] = left[q4 ? set_pos_l[rem_l[i]] : rem_l[i]];
        }
        for (size_t j = 0; j < rem_r.size(); ++j) sr[j] = right[q4 ? j : rem_r[j]];
        pp = Rescore(sub, sl, sr, profiles, opt.beta, opt.threads);
        Sinkhorn(&pp, sub.idx, sub.rows, sub.k, static_cast<int64_t>(rem_r.size()), opt.temperature,
                 opt.sinkhorn_iterations, opt.threads);
        support = &sub;
      }
      pseudo_done = true;
      const int k = support->k;
      for (int64_t i = 0; i < support->rows; ++i) {
        int best = 0;
        for (int j = 1; j < k; ++j) {
          const float a = pp[i * k + j], b = pp[i * k + best];
          if (a > b || (a == b && support->idx[i * k + j] < support->idx[i * k + best])) best = j;
        }
        if (pp[i * k + best] <= opt.pseudo_threshold) continue;
        const int32_t lp = rem_l[i], rp = rem_r[support->idx[i * k + best]];
        if (matched_right[rp]) continue;  // cannot happen above 0.5 after a column step; be safe
        matched_left[lp] = matched_right[rp] = 1;
        seeds.emplace_back(left[lp], right[rp]);
        ++rr.new_pseudo_pairs;
        rr.new_pseudo_correct += truth[lp] == rp;
      }
    }
    rr.phase_s = pt.phases();
    report.rounds.push_back(std::move(rr));
    if (round < opt.rounds && report.rounds.back().new_pseudo_pairs == 0) break;
  }
  report.total_s = Since(t0);
  return report;
}

}  // namespace baton::tea
