// Splitting the short comma lists baton keeps in text (batch plans, per-node worker counts, the
// nodes a policy emptied) without hand-written index arithmetic at each site.
#pragma once

#include <string_view>
#include <vector>

namespace baton {

// `text` cut at every `sep`: n separators give n + 1 pieces, empty ones included ("" gives one
// empty piece), so a caller decides what an empty piece means. The pieces view `text`.
inline std::vector<std::string_view> SplitOn(std::string_view text, char sep) {
  std::vector<std::string_view> pieces;
  while (true) {
    const size_t at = text.find(sep);
    pieces.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return pieces;
    text.remove_prefix(at + 1);
  }
}

}  // namespace baton
