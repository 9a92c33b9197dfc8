#include "tea/graph.h"

#include <algorithm>
#include <sstream>

namespace baton::tea {
namespace {

// Unique (row, col) pairs -> 0/1 sparse matrix of the given shape.
SpMat IncidenceMatrix(std::vector<std::pair<int32_t, int32_t>> entries, int64_t rows,
                      int64_t cols) {
  std::sort(entries.begin(), entries.end());
  entries.erase(std::unique(entries.begin(), entries.end()), entries.end());
  std::vector<Eigen::Triplet<float, int64_t>> trip;
  trip.reserve(entries.size());
  for (auto [r, c] : entries) trip.emplace_back(r, c, 1.0f);
  SpMat m(rows, cols);
  m.setFromTriplets(trip.begin(), trip.end());
  return m;
}

}  // namespace

std::vector<Quad> RawQuadruples(const Dataset& data) {
  std::vector<Quad> q;
  q.reserve(data.facts.size() * 4);
  for (const Fact& f : data.facts) {
    q.push_back({f.head, f.tail, 2 * f.rel, f.time_begin});
    q.push_back({f.tail, f.head, 2 * f.rel + 1, f.time_begin});
    if (f.has_end) {
      q.push_back({f.head, f.tail, 2 * f.rel, f.time_end});
      q.push_back({f.tail, f.head, 2 * f.rel + 1, f.time_end});
    }
  }
  return q;
}

Graph BuildGraph(const Dataset& data, bool faithful) {
  Graph g;
  std::vector<Quad> quads = RawQuadruples(data);
  g.stats.raw_quadruples = static_cast<int64_t>(quads.size());
  int32_t max_ent = 0, max_rel = 1, max_time = 0;  // relation 0 is always counted (rel_size >= 2)
  for (const Quad& q : quads) {
    max_ent = std::max({max_ent, q.head, q.tail});
    max_rel = std::max(max_rel, q.rel);
    max_time = std::max(max_time, q.time);
  }
  std::sort(quads.begin(), quads.end());
  quads.erase(std::unique(quads.begin(), quads.end()), quads.end());
  const int32_t n = max_ent + 1;
  g.node_size = n;
  g.rel.kind_size = max_rel + 1;
  g.time.kind_size = max_time + 1;

  // One pass with a running tuple index, as the official load_graph does.
  std::vector<int64_t> diag(n, 0);
  std::vector<int64_t> tuple_count;
  std::vector<std::pair<int32_t, int32_t>> rel_ent, ent_rel, time_ent, ent_time;
  std::vector<int32_t> tuple_time_scratch;
  g.rel.tuple_ptr.push_back(0);
  g.time.tuple_ptr.push_back(0);
  auto close_tuple_times = [&] {
    // Distinct times of the tuple just finished (quads are sorted by relation first).
    std::sort(tuple_time_scratch.begin(), tuple_time_scratch.end());
    tuple_time_scratch.erase(std::unique(tuple_time_scratch.begin(), tuple_time_scratch.end()),
                             tuple_time_scratch.end());
    g.time.tuple_kind.insert(g.time.tuple_kind.end(), tuple_time_scratch.begin(),
                             tuple_time_scratch.end());
    g.time.tuple_ptr.push_back(static_cast<int64_t>(g.time.tuple_kind.size()));
    g.rel.tuple_ptr.push_back(static_cast<int64_t>(g.rel.tuple_kind.size()));
    tuple_time_scratch.clear();
  };
  for (size_t i = 0; i < quads.size(); ++i) {
    const Quad& q = quads[i];
    diag[q.head] += 1;
    diag[q.tail] += 1;
    bool new_tuple =
        g.tuple_head.empty() || g.tuple_head.back() != q.head || g.tuple_tail.back() != q.tail;
    if (new_tuple) {
      if (!g.tuple_head.empty()) close_tuple_times();
      g.tuple_head.push_back(q.head);
      g.tuple_tail.push_back(q.tail);
      tuple_count.push_back(0);
      // Q1: the official code stores the tuple count in the same dict slot as the diagonal, so
      // starting a self-loop tuple wipes what the diagonal had accumulated.
      if (faithful && q.head == q.tail) diag[q.head] = 0;
    }
    if (q.head == q.tail) {
      diag[q.head] += 1;  // a self-loop's count lives on the diagonal
    } else {
      tuple_count.back() += 1;
    }
    if (g.rel.tuple_kind.size() == static_cast<size_t>(g.rel.tuple_ptr.back()) ||
        g.rel.tuple_kind.back() != q.rel) {
      g.rel.tuple_kind.push_back(q.rel);
    }
    tuple_time_scratch.push_back(q.time);
    rel_ent.emplace_back(q.rel, q.head);
    ent_rel.emplace_back(q.tail, q.rel);
    time_ent.emplace_back(q.time, q.head);
    ent_time.emplace_back(q.tail, q.time);
  }
  if (!g.tuple_head.empty()) close_tuple_times();

  std::vector<Eigen::Triplet<float, int64_t>> trip;
  trip.reserve(n + g.tuple_head.size());
  int64_t val_sum = 0, isolated = 0;
  for (int32_t e = 0; e < n; ++e) {
    trip.emplace_back(e, e, static_cast<float>(diag[e]));  // zeros stored too, like the original
    val_sum += diag[e];
    isolated += diag[e] == 0;
  }
  int64_t self_loops = 0;
  for (size_t k = 0; k < g.tuple_head.size(); ++k) {
    if (g.tuple_head[k] == g.tuple_tail[k]) {
      ++self_loops;
      continue;
    }
    trip.emplace_back(g.tuple_head[k], g.tuple_tail[k], static_cast<float>(tuple_count[k]));
    val_sum += tuple_count[k];
  }
  g.ent_ent.resize(n, n);
  g.ent_ent.setFromTriplets(trip.begin(), trip.end());

  g.rel.kind_ent = IncidenceMatrix(std::move(rel_ent), g.rel.kind_size, n);
  g.rel.ent_kind = IncidenceMatrix(std::move(ent_rel), n, g.rel.kind_size);
  g.time.kind_ent = IncidenceMatrix(std::move(time_ent), g.time.kind_size, n);
  g.time.ent_kind = IncidenceMatrix(std::move(ent_time), n, g.time.kind_size);

  GraphStats& s = g.stats;
  s.unique_quadruples = static_cast<int64_t>(quads.size());
  s.node_size = n;
  s.rel_size = g.rel.kind_size;
  s.time_size = g.time.kind_size;
  s.ent_tuple = static_cast<int64_t>(g.tuple_head.size());
  s.triples_idx_r = static_cast<int64_t>(g.rel.tuple_kind.size());
  s.triples_idx_t = static_cast<int64_t>(g.time.tuple_kind.size());
  s.ent_ent_nnz = n + s.ent_tuple - self_loops;
  s.ent_ent_val_sum = val_sum;
  s.rel_ent = g.rel.kind_ent.nonZeros();
  s.ent_rel = g.rel.ent_kind.nonZeros();
  s.time_ent = g.time.kind_ent.nonZeros();
  s.ent_time = g.time.ent_kind.nonZeros();
  s.isolated_diag_zero = isolated;
  return g;
}

std::string FormatStats(const GraphStats& s) {
  std::ostringstream o;
  o << "{'raw_quadruples': " << s.raw_quadruples << ", 'unique_quadruples': " << s.unique_quadruples
    << ", 'node_size': " << s.node_size << ", 'rel_size': " << s.rel_size
    << ", 'time_size': " << s.time_size << ", 'ent_tuple': " << s.ent_tuple
    << ", 'triples_idx_r': " << s.triples_idx_r << ", 'triples_idx_t': " << s.triples_idx_t
    << ", 'ent_ent_nnz': " << s.ent_ent_nnz << ", 'ent_ent_val_sum': " << s.ent_ent_val_sum
    << ", 'rel_ent': " << s.rel_ent << ", 'ent_rel': " << s.ent_rel
    << ", 'time_ent': " << s.time_ent << ", 'ent_time': " << s.ent_time
    << ", 'isolated_diag_zero': " << s.isolated_diag_zero << "}";
  return o.str();
}

}  // namespace baton::tea
