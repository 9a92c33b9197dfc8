#include "common/safe_text.h"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace baton {
namespace {

// Length of the valid UTF-8 sequence starting at text[i] (1-4), or 0 if it is not one. Rejects
// overlong forms, surrogates and code points past U+10FFFF, as a strict decoder must.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<uint8_t>(text[k]); };
  uint8_t b0 = byte(i);
  size_t n;
  uint32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, cp = b0 & 0x1Fu;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, cp = b0 & 0x0Fu;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, cp = b0 & 0x07u;
  } else {
    return 0;
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0u) != 0x80u) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3Fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  // C1 control characters (U+0080..U+009F) are terminal controls too.
  if (cp >= 0x80 && cp <= 0x9F) return 0;
  return n;
}

}  // namespace

std::string SafeText(std::string_view text, size_t max_bytes) {
  static constexpr std::string_view kCut = "\xE2\x80\xA6";  // …
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  std::vector<uint8_t> pieces;  // byte length of each piece written, to cut only between them
  for (size_t i = 0; i < text.size();) {
    std::string piece;
    uint8_t b = static_cast<uint8_t>(text[i]);
    size_t n = b < 0x80 ? 1 : Utf8SequenceLength(text, i);
    if (b == '\\') {
      piece = "\\\\";
    } else if (b >= 0x20 && b < 0x7F) {
      piece.assign(1, static_cast<char>(b));
    } else if (n > 1) {
      piece.assign(text.substr(i, n));
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      piece = {'\\', 'x', kHex[b >> 4], kHex[b & 0xF]};
      n = 1;
    }
    if (out.size() + piece.size() > max_bytes) {
      while (out.size() + kCut.size() > max_bytes && !pieces.empty()) {
        out.resize(out.size() - pieces.back());
        pieces.pop_back();
      }
      if (out.size() + kCut.size() <= max_bytes) out += kCut;
      return out;
    }
    out += piece;
    pieces.push_back(static_cast<uint8_t>(piece.size()));
    i += n;
  }
  return out;
}

}  // namespace baton
