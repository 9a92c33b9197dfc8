// Element types, reduction operators and the block layout shared by every collective.
//
// Collectives work on raw buffers: a pointer, an element count and a DataType. Keeping torch and
// other tensor libraries out of the core means the control plane and tests build without them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace baton::comm {

// kBFloat16 is 2 bytes, the upper half of a float32 (bfloat16.h has the conversions).
enum class DataType { kFloat32, kFloat64, kInt64, kBFloat16 };

// avg divides the sum by the group size (integer division for kInt64; for kBFloat16 in float,
// rounded to nearest-even).
enum class ReduceOp { kSum, kAvg, kMax, kMin };

size_t ElementSize(DataType type);
std::string_view DataTypeName(DataType type);
std::string_view ReduceOpName(ReduceOp op);

// How `count` elements are split into `parts` contiguous blocks: the first count % parts blocks get
// one element more. Reduce-scatter hands block r to rank r, so callers use this to find their part.
struct Block {
  size_t offset = 0;  // in elements
  size_t count = 0;
};
std::vector<Block> Partition(size_t count, int parts);
// The element count of the largest block (0 for none).
size_t LargestCount(const std::vector<Block>& blocks);

}  // namespace baton::comm
