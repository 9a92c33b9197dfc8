// The LightTEA graph: quadruples with inverse relations and the sparse matrices label propagation
// runs on (spec §3–§4 of shared/papers/lighttea.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tea/dataset.h"
#include "tea/eigen.h"

namespace baton::tea {

// (head, tail, relation, time). Relation 2r is the fact's direction, 2r+1 its inverse.
struct Quad {
  int32_t head, tail, rel, time;
  auto operator<=>(const Quad&) const = default;
};

// Every fact as quadruples in file order, duplicates kept: a 4-column fact gives (h,t,2r,tau) and
// (t,h,2r+1,tau); a 5-column fact gives those two for tau_b and again for tau_e.
std::vector<Quad> RawQuadruples(const Dataset& data);

// Counts the reference files in shared/data/tea/ref/*_graph_stats.txt hold.
struct GraphStats {
  int64_t raw_quadruples = 0, unique_quadruples = 0;
  int64_t node_size = 0, rel_size = 0, time_size = 0;
  int64_t ent_tuple = 0, triples_idx_r = 0, triples_idx_t = 0;
  int64_t ent_ent_nnz = 0, ent_ent_val_sum = 0;
  int64_t rel_ent = 0, ent_rel = 0, time_ent = 0, ent_time = 0;
  int64_t isolated_diag_zero = 0;
};

// The relational or temporal side of the graph: "kind" nodes are relations or time ids.
struct AspectMatrices {
  int32_t kind_size = 0;
  SpMat kind_ent;  // kind_size x N: 1 at (r, head)   -- A_re / A_te
  SpMat ent_kind;  // N x kind_size: 1 at (tail, r)   -- A_er / A_et
  // Distinct kinds of each directed (head, tail) tuple, CSR over tuples (B_r / B_t).
  std::vector<int64_t> tuple_ptr;
  std::vector<int32_t> tuple_kind;
};

struct Graph {
  int32_t node_size = 0;
  SpMat ent_ent;  // N x N: raw counts, all diagonals stored, never degree-normalised
  // Distinct directed (head, tail) pairs of the sorted unique quadruples, sorted by head.
  std::vector<int32_t> tuple_head, tuple_tail;
  AspectMatrices rel, time;
  GraphStats stats;
};

// Builds the graph. `faithful` reproduces quirk Q1: when a self-loop tuple (h, h) starts, the
// diagonal count accumulated so far for h is reset to zero, as in the official code.
Graph BuildGraph(const Dataset& data, bool faithful);

// "{'raw_quadruples': 944604, ...}", the format of the reference files.
std::string FormatStats(const GraphStats& s);

}  // namespace baton::tea
