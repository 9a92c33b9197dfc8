#include "train/paro/strategy.h"

#include <algorithm>
#include <cctype>

namespace baton::train::paro {
namespace {

char Letter(Granularity k) {
  switch (k) {
    case Granularity::kNone:
      return 'N';
    case Granularity::kIntra:
      return 'I';
    case Granularity::kGlobal:
      return 'G';
  }
  return '?';
}

Strategy Make(const char* triple) {
  auto of = [](char c) {
    return c == 'N' ? Granularity::kNone : c == 'I' ? Granularity::kIntra : Granularity::kGlobal;
  };
  return {of(triple[0]), of(triple[1]), of(triple[2])};
}

std::string SupportedList() {
  std::string list;
  for (const Strategy& s : SupportedStrategies())
    list += (list.empty() ? "" : ", ") + StrategyName(s);
  return list + " (or ddp, zero1, zero2, zero3)";
}

}  // namespace

const std::vector<Strategy>& SupportedStrategies() {
  static const std::vector<Strategy> all = {Make("NNN"), Make("NNG"), Make("NGG"), Make("GGG"),
                                            Make("NIG"), Make("NII"), Make("IIG"), Make("IGG"),
                                            Make("ING"), Make("III")};
  return all;
}

std::string StrategyName(Strategy s) { return {Letter(s.p), Letter(s.g), Letter(s.os)}; }

std::string_view StrategyAlias(Strategy s) {
  const std::string name = StrategyName(s);
  if (name == "NNN") return "DDP";
  if (name == "NNG") return "ZeRO-1";
  if (name == "NGG") return "ZeRO-2";
  if (name == "GGG") return "ZeRO-3";
  if (name == "III") return "MiCS";
  return "";
}

Result<Strategy> ParseStrategy(std::string_view text) {
  std::string upper(text);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  if (upper == "DDP") upper = "NNN";
  if (upper == "ZERO1") upper = "NNG";
  if (upper == "ZERO2") upper = "NGG";
  if (upper == "ZERO3") upper = "GGG";
  for (const Strategy& s : SupportedStrategies()) {
    if (StrategyName(s) == upper) return s;
  }
  return Status::InvalidArgument("unknown sharding strategy '" + std::string(text) +
                                 "': expected one of " + SupportedList());
}

int Grid::Divisor(Granularity k) const {
  switch (k) {
    case Granularity::kNone:
      return 1;
    case Granularity::kIntra:
      return per_node;
    case Granularity::kGlobal:
      return world();
  }
  return 1;
}

ShardLayout::ShardLayout(Grid grid_in, int node_in, int local_in, size_t size_in)
    : grid(grid_in), node(node_in), local(local_in), size(size_in) {
  const size_t n = static_cast<size_t>(grid.world());
  chunk = std::max<size_t>(1, (size + n - 1) / n);
}

int ShardLayout::OwnerOfChunk(int c) const {
  const int of_local = c / grid.nodes, of_node = c % grid.nodes;
  return of_node * grid.per_node + of_local;
}

size_t ShardLayout::ShardSize(Granularity k) const {
  return padded() / static_cast<size_t>(grid.Divisor(k));
}

size_t ShardLayout::ShardOffset(Granularity k) const {
  switch (k) {
    case Granularity::kNone:
      return 0;
    case Granularity::kIntra:
      return intra_offset();
    case Granularity::kGlobal:
      return own_chunk_offset();
  }
  return 0;
}

StateBytes ModelStateBytes(Strategy s, Grid grid, double params, double trainable,
                           ElementBytes bytes) {
  StateBytes out;
  out.params = bytes.param * params / grid.Divisor(s.p);
  out.grads = bytes.grad * trainable / grid.Divisor(s.g);
  out.optimizer = bytes.optimizer * trainable / grid.Divisor(s.os);
  return out;
}

}  // namespace baton::train::paro
