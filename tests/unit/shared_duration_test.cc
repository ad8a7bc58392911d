#include <gtest/gtest.h>

#include "shared/duration.h"

namespace testfarm {
namespace {

TEST(ParseDuration, AcceptsEveryUnit) {
  EXPECT_EQ(ParseDuration("30"), Millis(30'000));  // bare numbers are seconds
  EXPECT_EQ(ParseDuration("500ms"), Millis(500));
  EXPECT_EQ(ParseDuration("1.5s"), Millis(1'500));
  EXPECT_EQ(ParseDuration("2m"), Millis(120'000));
  EXPECT_EQ(ParseDuration("2min"), Millis(120'000));
  EXPECT_EQ(ParseDuration("1h"), Millis(3'600'000));
  EXPECT_EQ(ParseDuration("30d"), Millis(2'592'000'000));
  EXPECT_EQ(ParseDuration("0"), Millis(0));
  EXPECT_EQ(ParseDuration("0.25s"), Millis(250));
}

TEST(ParseDuration, RoundsToTheNearestMillisecond) {
  EXPECT_EQ(ParseDuration("1.4ms"), Millis(1));
  EXPECT_EQ(ParseDuration("0.0016s"), Millis(2));
  EXPECT_EQ(ParseDuration("1.1s"), Millis(1'100));
}

TEST(ParseDuration, APositiveDurationNeverBecomesNone) {
  // 0 means "no timeout": a sub-millisecond value is one millisecond, not forever.
  EXPECT_EQ(ParseDuration("0.4ms"), Millis(1));
  EXPECT_EQ(ParseDuration("0.0001s"), Millis(1));
  EXPECT_EQ(ParseDuration("1e-300"), Millis(1));
  EXPECT_EQ(ParseDuration("0ms"), Millis(0));
}

TEST(ParseDuration, RejectsMalformedText) {
  for (const char* text : {"", "-1", "+1", "1x", "ms", "s", "1e400", " 1", "1 ", "1 s", "1sec",
                           "nan", "inf", "1.5.5", "--1", "1ms5"}) {
    EXPECT_EQ(ParseDuration(text), std::nullopt) << "'" << text << "'";
  }
}

TEST(ParseDuration, RejectsHugeValues) {
  EXPECT_EQ(ParseDuration("1e12"), Millis(1'000'000'000'000'000));  // the largest accepted
  EXPECT_EQ(ParseDuration("1e13"), std::nullopt);
  EXPECT_EQ(ParseDuration("999999999999999h"), std::nullopt);
  EXPECT_EQ(ParseDuration(std::string(40, '1')), std::nullopt);  // longer than 32 characters
}

TEST(ParseDuration, DoesNotReadPastTheView) {
  std::string_view text = std::string_view("5sX").substr(0, 2);
  EXPECT_EQ(ParseDuration(text), Millis(5'000));
}

TEST(FormatDuration, PicksAUnitBySize) {
  EXPECT_EQ(FormatDuration(Millis(0)), "0ms");
  EXPECT_EQ(FormatDuration(Millis(12)), "12ms");
  EXPECT_EQ(FormatDuration(Millis(999)), "999ms");
  EXPECT_EQ(FormatDuration(Millis(1'000)), "1.00s");
  EXPECT_EQ(FormatDuration(Millis(1'530)), "1.53s");
  EXPECT_EQ(FormatDuration(Millis(60'000)), "1m00s");
  EXPECT_EQ(FormatDuration(Millis(125'000)), "2m05s");
  EXPECT_EQ(FormatDuration(Millis(3'600'000)), "60m00s");
}

TEST(FormatDuration, ParsesBackForWholeUnits) {
  for (long long ms : {0LL, 7LL, 999LL, 1'000LL, 1'530LL, 42'250LL}) {
    EXPECT_EQ(ParseDuration(FormatDuration(Millis(ms))), Millis(ms)) << ms;
  }
}

}  // namespace
}  // namespace testfarm
