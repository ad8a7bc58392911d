#include <gtest/gtest.h>

#include <string_view>

#include "shared/utf8.h"

namespace testfarm {
namespace {

TEST(DecodeUtf8, ValidSequencesOfEveryLength) {
  std::string_view text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  Utf8Char c = DecodeUtf8(text, 0);
  EXPECT_TRUE(c.valid);
  EXPECT_EQ(c.length, 1u);
  EXPECT_EQ(c.code_point, U'a');
  c = DecodeUtf8(text, 1);
  EXPECT_EQ(c.length, 2u);
  EXPECT_EQ(c.code_point, U'\u00e9');
  c = DecodeUtf8(text, 3);
  EXPECT_EQ(c.length, 3u);
  EXPECT_EQ(c.code_point, U'\u20ac');
  c = DecodeUtf8(text, 6);
  EXPECT_EQ(c.length, 4u);
  EXPECT_EQ(c.code_point, U'\U0001F600');
}

TEST(DecodeUtf8, InvalidSequencesConsumeTheirMaximalValidPrefix) {
  struct Case {
    std::string_view text;
    std::size_t length;
  };
  for (const Case& c : {
           Case{"\x80", 1},              // a stray continuation byte
           Case{"\xC0\xAF", 1},          // overlong lead
           Case{"\xE0\x80\x80", 1},      // overlong three-byte form
           Case{"\xED\xA0\x80", 1},      // a UTF-16 surrogate
           Case{"\xF4\x90\x80\x80", 1},  // beyond U+10FFFF
           Case{"\xF5\x80", 1},          // never a lead byte
           Case{"\xE2\x82", 2},          // truncated: the two acceptable bytes go together
           Case{"\xE2\x82"
                "A",
                2},  // broken by 'A', which is decoded afresh
       }) {
    Utf8Char d = DecodeUtf8(c.text, 0);
    EXPECT_FALSE(d.valid) << c.text;
    EXPECT_EQ(d.length, c.length) << c.text;
  }
}

}  // namespace
}  // namespace testfarm
