#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/output_rules.h"

namespace testfarm::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;

bool Found(const std::string& pattern, const std::string& text) {
  return FirstMatch({pattern}, text).has_value();
}

TEST(OutputRules, CtestSyntax) {
  EXPECT_TRUE(Found("\\[  SKIPPED \\]", "x\n[  SKIPPED ] A.b (0 ms)\n"));
  EXPECT_FALSE(Found("\\[  SKIPPED \\]", "[       OK ] A.b\n"));
  EXPECT_TRUE(Found("^start", "start\nmore"));
  EXPECT_FALSE(Found("^more", "start\nmore")) << "^ is the start of the output, not of a line";
  EXPECT_TRUE(Found("a.b", "a\nb")) << ". matches a newline, as in CTest";
  EXPECT_TRUE(Found("x{2}", "x{2}")) << "braces are plain characters in CTest's syntax";
  EXPECT_FALSE(Found("x{2}", "xx"));
  EXPECT_TRUE(Found("\\d", "d")) << "a backslash before a letter is just the letter";
  EXPECT_FALSE(Found("\\w", "a")) << "not GNU's word character";
  EXPECT_TRUE(Found("[\\]x", "\\x")) << "a backslash in brackets is itself";
  EXPECT_TRUE(Found("[^a-z]Skip", " Skip"));
  EXPECT_TRUE(Found("(pass|ok)+!", "okpass!"));
}

TEST(OutputRules, SearchesThroughNulBytesAndReturnsTheFirstMatchingPattern) {
  std::string text("binary\0data then DONE", 21);
  EXPECT_THAT(FirstMatch({"nothing", "DONE", "data"}, text), Optional(std::string("DONE")));
  EXPECT_FALSE(FirstMatch({}, text));
}

TEST(OutputRules, APatternThatDoesNotCompileIsNamed) {
  EXPECT_TRUE(CheckPattern("a(b|c)*").ok());
  Status bad = CheckPattern("(unclosed");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("not a regular expression: '(unclosed'"));
  EXPECT_FALSE(FirstMatch({"(unclosed"}, "(unclosed")) << "never matches, never crashes";
}

}  // namespace
}  // namespace testfarm::coordinator
