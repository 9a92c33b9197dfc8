#include "common/text_list.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace baton {
namespace {

using Pieces = std::vector<std::string_view>;

TEST(SplitOn, KeepsEveryPieceEmptyOnesIncluded) {
  EXPECT_EQ(SplitOn("a,b,c", ','), (Pieces{"a", "b", "c"}));
  EXPECT_EQ(SplitOn("", ','), (Pieces{""}));
  EXPECT_EQ(SplitOn("a,,b,", ','), (Pieces{"a", "", "b", ""}));
  EXPECT_EQ(SplitOn("no-separator", ','), (Pieces{"no-separator"}));
}

}  // namespace
}  // namespace baton
