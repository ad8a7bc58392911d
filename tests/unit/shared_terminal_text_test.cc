#include <gtest/gtest.h>

#include <string>

#include "shared/terminal_text.h"

namespace testfarm {
namespace {

using namespace std::string_literals;

TEST(EscapeForTerminal, PlainTextIsUnchanged) {
  EXPECT_EQ(EscapeForTerminal("suite::Case/0 C:\\path\twith tab"),
            "suite::Case/0 C:\\path\twith tab");
}

TEST(EscapeForTerminal, EscapeSequencesAndNulBecomeVisible) {
  EXPECT_EQ(EscapeForTerminal("a\033[2Jb"), "a\\x1b[2Jb");
  EXPECT_EQ(EscapeForTerminal("before\0after"s), "before\\x00after");
  EXPECT_EQ(EscapeForTerminal("cr\rbell\adel\x7f"), "cr\\x0dbell\\x07del\\x7f");
}

TEST(EscapeForTerminal, NewlinesKeptOnlyInMultiLineText) {
  EXPECT_EQ(EscapeForTerminal("one\ntwo"), "one\\x0atwo");
  EXPECT_EQ(EscapeForTerminal("one\ntwo\n", Newlines::kKeep), "one\ntwo\n");
}

TEST(EscapeForTerminal, ValidUtf8PassesC1AndInvalidBytesDoNot) {
  EXPECT_EQ(EscapeForTerminal("caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80"),
            "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80");
  EXPECT_EQ(EscapeForTerminal("\xc2\x9b"
                              "2J"),
            "\\xc2\\x9b2J");  // C1 CSI
  EXPECT_EQ(EscapeForTerminal("\x9b"
                              "2J"),
            "\\x9b2J");                                             // a lone 8-bit CSI
  EXPECT_EQ(EscapeForTerminal("\xc0\xaf"), "\\xc0\\xaf");           // overlong '/'
  EXPECT_EQ(EscapeForTerminal("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // a surrogate
  EXPECT_EQ(EscapeForTerminal("cut \xe2\x9c"), "cut \\xe2\\x9c");   // truncated at the end
}

}  // namespace
}  // namespace testfarm
