// PaRO-DP strategies (../shared/papers/paro.md §2, §4): how each of the three model states —
// parameters (p), gradients (g) and optimizer state (os) — is partitioned over n = g·m ranks
// arranged as g nodes of m ranks (fast links inside a node, slow links between):
//
//   N  none     every rank holds all of it;
//   I  intra    split over the m ranks of a node (each node holds a full copy);
//   G  global   split over all n ranks.
//
// A strategy is the triple "p g os". The supported ten are the paper's eight (NNG = ZeRO-1,
// NGG = ZeRO-2, GGG = ZeRO-3, NIG, NII, IIG, IGG, ING) plus NNN (plain data parallel) and III
// (MiCS / FSDP hybrid shard). All of them partition no state more finely than the state it feeds
// (p and g no finer than os), which is what lets one update step serve every layout.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace baton::train::paro {

enum class Granularity { kNone, kIntra, kGlobal };

struct Strategy {
  Granularity p = Granularity::kNone;
  Granularity g = Granularity::kNone;
  Granularity os = Granularity::kNone;
  bool operator==(const Strategy&) const = default;
};

// "NIG" and the like; also the aliases ddp (NNN), zero1, zero2, zero3 (case-insensitive).
// Triples outside the supported ten are rejected with the list of those that are.
Result<Strategy> ParseStrategy(std::string_view text);
// The triple, e.g. "NIG".
std::string StrategyName(Strategy s);
// The other name a strategy goes by ("DDP", "ZeRO-1", "ZeRO-2", "ZeRO-3", "MiCS"), or "".
std::string_view StrategyAlias(Strategy s);
// NNN, NNG, NGG, GGG, NIG, NII, IIG, IGG, ING, III: the order tables print in.
const std::vector<Strategy>& SupportedStrategies();

// One flat parameter buffer of the model (a layer, or the part of one that is gathered and
// trained together).
struct LayerShape {
  size_t size = 0;        // elements of the layer's flat parameter buffer
  bool trainable = true;  // frozen layers have no gradient and no optimizer state
};

// The grid of ranks a strategy runs on: rank r = node·per_node + local (node-major, as the
// launcher numbers ranks).
struct Grid {
  int nodes = 1;     // g
  int per_node = 1;  // m
  int world() const { return nodes * per_node; }
  // How many ranks share one copy of a state partitioned at `k`: 1, m or n.
  int Divisor(Granularity k) const;
};

// Where one flat buffer of `size` elements (a layer's parameters, or its gradients) lives on the
// rank (node i, local d), per §5. The buffer is padded to n equal chunks; then
//   the intra shard of local index d   = chunks d·g … d·g+g−1 (contiguous, held by INTER_d),
//   the global chunk owned by (i, d)   = chunk d·g + i (inside the intra shard, at offset i),
// so the members of INTER_d together own exactly intra shard d, one all-gather on INTER_d after
// the update rebuilds it, and a hierarchical reduce-scatter (INTRA by intra shard, then INTER_d by
// chunk) delivers to every rank the chunk it owns. Offsets are in elements of the padded buffer.
struct ShardLayout {
  ShardLayout(Grid grid, int node, int local, size_t size);

  Grid grid;
  int node = 0, local = 0;
  size_t size = 0;   // the caller's elements
  size_t chunk = 0;  // ceil(size / n); at least 1

  size_t padded() const { return chunk * static_cast<size_t>(grid.world()); }
  // The global chunk index of (node, local): local·g + node, a bijection onto 0 … n−1.
  int ChunkOf(int of_node, int of_local) const { return of_local * grid.nodes + of_node; }
  // The world rank that owns chunk c (the inverse of ChunkOf).
  int OwnerOfChunk(int c) const;
  size_t intra_size() const { return chunk * static_cast<size_t>(grid.nodes); }
  size_t intra_offset() const { return intra_size() * static_cast<size_t>(local); }
  size_t own_chunk_offset() const { return chunk * static_cast<size_t>(ChunkOf(node, local)); }
  // The elements a state partitioned at `k` holds on this rank, and where they start in the
  // padded buffer: the whole buffer, the intra shard or the owned chunk.
  size_t ShardSize(Granularity k) const;
  size_t ShardOffset(Granularity k) const;
};

// The bytes of model state one rank holds under a strategy (§4's memory column): parameters,
// gradients and optimizer state, each over its divisor. `params` counts every parameter,
// `trainable` those that train (gradients and optimizer state exist for these only).
struct StateBytes {
  double params = 0, grads = 0, optimizer = 0;
  double total() const { return params + grads + optimizer; }
};
struct ElementBytes {
  double param = 2;       // bf16 parameters; 4 or 8 for fp32 / fp64
  double grad = 2;        // likewise
  double optimizer = 12;  // K: fp32 master copy + Adam's two moments (8 when params are fp32)
};
StateBytes ModelStateBytes(Strategy s, Grid grid, double params, double trainable,
                           ElementBytes bytes);

}  // namespace baton::train::paro
