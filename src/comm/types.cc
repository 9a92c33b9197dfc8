#include "comm/types.h"

#include <algorithm>

namespace baton::comm {

size_t ElementSize(DataType type) {
  switch (type) {
    case DataType::kBFloat16:
      return 2;
    case DataType::kFloat32:
      return 4;
    case DataType::kFloat64:
    case DataType::kInt64:
      return 8;
  }
  return 0;
}

std::string_view DataTypeName(DataType type) {
  switch (type) {
    case DataType::kFloat32:
      return "float32";
    case DataType::kFloat64:
      return "float64";
    case DataType::kInt64:
      return "int64";
    case DataType::kBFloat16:
      return "bfloat16";
  }
  return "?";
}

std::string_view ReduceOpName(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

std::vector<Block> Partition(size_t count, int parts) {
  std::vector<Block> blocks(static_cast<size_t>(parts));
  const size_t n = static_cast<size_t>(parts);
  const size_t base = count / n;
  const size_t extra = count % n;
  size_t offset = 0;
  for (size_t i = 0; i < n; ++i) {
    blocks[i].offset = offset;
    blocks[i].count = base + (i < extra ? 1 : 0);
    offset += blocks[i].count;
  }
  return blocks;
}

size_t LargestCount(const std::vector<Block>& blocks) {
  size_t largest = 0;
  for (const auto& b : blocks) largest = std::max(largest, b.count);
  return largest;
}

}  // namespace baton::comm
