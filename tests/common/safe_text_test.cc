#include "common/safe_text.h"

#include <gtest/gtest.h>

#include <set>

namespace baton {
namespace {

TEST(SafeText, PrintableTextAndValidUtf8PassUnchanged) {
  EXPECT_EQ(SafeText("node-0/1 wrote 3 files"), "node-0/1 wrote 3 files");
  EXPECT_EQ(SafeText("Zürich 東京 🙂"), "Zürich 東京 🙂");
}

TEST(SafeText, ControlCharactersAndBadBytesAreEscapedLosslessly) {
  EXPECT_EQ(SafeText("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
  EXPECT_EQ(SafeText("k\xff"), "k\\xff");
  EXPECT_EQ(SafeText("k\xfe"), "k\\xfe");         // two different bytes stay different
  EXPECT_EQ(SafeText("a\\xff"), "a\\\\xff");      // a literal backslash cannot pose as an escape
  EXPECT_EQ(SafeText("\xc2\x9b"), "\\xc2\\x9b");  // C1 control (CSI) in valid UTF-8
  EXPECT_EQ(SafeText("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a UTF-16 surrogate
  EXPECT_EQ(SafeText("\xc0\xaf"), "\\xc0\\xaf");           // an overlong '/'
  EXPECT_EQ(SafeText(std::string("a\0b", 3)), "a\\x00b");
}

TEST(SafeText, CapsWithoutCuttingACharacterOrAnEscape) {
  std::string capped = SafeText(std::string(100, 'x'), 10);
  EXPECT_LE(capped.size(), 10u);
  EXPECT_EQ(capped, "xxxxxxx\xE2\x80\xA6");
  // Every cut lands between whole pieces of the full escaped text: \x01 \x02 東 京 \x03.
  std::string mixed = "\x01\x02東京\x03";
  std::string full = SafeText(mixed, 1000);
  ASSERT_EQ(full, "\\x01\\x02東京\\x03");
  const std::set<size_t> boundaries = {0, 4, 8, 11, 14, 18};
  for (size_t cap = 0; cap < 30; ++cap) {
    std::string s = SafeText(mixed, cap);
    EXPECT_LE(s.size(), cap);
    std::string kept = s.ends_with("\xE2\x80\xA6") ? s.substr(0, s.size() - 3) : s;
    EXPECT_TRUE(full.starts_with(kept)) << s;
    EXPECT_TRUE(boundaries.count(kept.size())) << "cut inside a piece at cap " << cap << ": " << s;
  }
  EXPECT_EQ(SafeText("\x01\x02东", 9), "\\x01\xE2\x80\xA6");
}

}  // namespace
}  // namespace baton
