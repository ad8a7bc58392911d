// GoogleTest support: the listing and JSON parsers on real gtest 1.12 output, and binary
// detection on real files.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "coordinator/gtest.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

using Status = GtestCaseResult::Status;
using std::chrono::milliseconds;

std::vector<std::string> Names(const std::vector<GtestCase>& cases) {
  std::vector<std::string> names;
  for (const GtestCase& c : cases) names.push_back(c.name);
  return names;
}

std::vector<std::string> DisabledNames(const std::vector<GtestCase>& cases) {
  std::vector<std::string> names;
  for (const GtestCase& c : cases)
    if (c.disabled) names.push_back(c.name);
  return names;
}

// --- ParseGtestList ------------------------------------------------------------------------

// tests/fixtures/gtest/tf_gtest --gtest_list_tests, verbatim.
constexpr std::string_view kRealListing =
    "Running main() from ./googletest/src/gtest_main.cc\n"
    "Basic.\n"
    "  Passes\n"
    "  AlsoPasses\n"
    "  Fails\n"
    "  Skipped\n"
    "  Crashes\n"
    "  Hangs\n"
    "  DISABLED_Ignored\n"
    "Typed/0.  # TypeParam = int\n"
    "  ZeroIsFalse\n"
    "Typed/1.  # TypeParam = double\n"
    "  ZeroIsFalse\n"
    "Slow.\n"
    "  TakesAMoment\n"
    "Small/Param.\n"
    "  BelowThree/0  # GetParam() = 1\n"
    "  BelowThree/1  # GetParam() = 2\n"
    "  BelowThree/2  # GetParam() = 3\n";

TEST(ParseGtestList, RealListing) {
  auto cases = ParseGtestList(kRealListing);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases),
            (std::vector<std::string>{
                "Basic.Passes", "Basic.AlsoPasses", "Basic.Fails", "Basic.Skipped", "Basic.Crashes",
                "Basic.Hangs", "Basic.DISABLED_Ignored", "Typed/0.ZeroIsFalse",
                "Typed/1.ZeroIsFalse", "Slow.TakesAMoment", "Small/Param.BelowThree/0",
                "Small/Param.BelowThree/1", "Small/Param.BelowThree/2"}));
  EXPECT_EQ(DisabledNames(*cases), std::vector<std::string>{"Basic.DISABLED_Ignored"});
}

TEST(ParseGtestList, TypedAndParameterizedNamesAreKeptWhole) {
  auto cases = ParseGtestList(
      "Prefix/TypedSuite/0.  # TypeParam = std::map<int, std::string>\n"
      "  Case\n"
      "Inst/ParamTest.\n"
      "  Even/0  # GetParam() = (1, \"a  # b\")\n"
      "  Named/foo_bar  # GetParam() = 4-byte object <01-00 00-00>\n");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases),
            (std::vector<std::string>{"Prefix/TypedSuite/0.Case", "Inst/ParamTest.Even/0",
                                      "Inst/ParamTest.Named/foo_bar"}));
  EXPECT_TRUE(DisabledNames(*cases).empty());
}

TEST(ParseGtestList, DisabledFollowsGtestsRule) {
  // gtest disables a suite or case name matching "DISABLED_*" or "*/DISABLED_*".
  auto cases = ParseGtestList(
      "Math.\n"
      "  Adds\n"
      "  DISABLED_Divides\n"
      "DISABLED_Suite.\n"
      "  Anything\n"
      "Inst/DISABLED_Param.\n"
      "  Works/0  # GetParam() = 1\n"
      "Inst/Param.\n"
      "  DISABLED_Works/0  # GetParam() = 1\n"
      "Almost_DISABLED_.\n"
      "  NotDisabled\n");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(
      DisabledNames(*cases),
      (std::vector<std::string>{"Math.DISABLED_Divides", "DISABLED_Suite.Anything",
                                "Inst/DISABLED_Param.Works/0", "Inst/Param.DISABLED_Works/0"}));
  EXPECT_EQ(cases->size(), 6u);
}

TEST(ParseGtestList, EmptyListingIsNoCases) {
  for (std::string_view output :
       {std::string_view(""), std::string_view("\n"),
        std::string_view("Running main() from ./googletest/src/gtest_main.cc\n"),
        std::string_view("Running main() from gtest_main.cc\n\n")}) {
    auto cases = ParseGtestList(output);
    ASSERT_TRUE(cases.ok()) << cases.error().message;
    EXPECT_TRUE(cases->empty());
  }
}

TEST(ParseGtestList, CrLfAndMissingFinalNewline) {
  auto cases = ParseGtestList("Running main() from gtest_main.cc\r\nA.\r\n  x\r\n  y");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases), (std::vector<std::string>{"A.x", "A.y"}));
}

TEST(ParseGtestList, BannerBeforeTheListingIsSkipped) {
  auto cases = ParseGtestList("my_tests 1.2: starting\nRunning main() from x.cc\nA.\n  x\n");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases), std::vector<std::string>{"A.x"});
}

void ExpectListError(std::string_view output, std::string_view expected) {
  auto cases = ParseGtestList(output);
  ASSERT_FALSE(cases.ok()) << output;
  EXPECT_NE(cases.error().message.find(expected), std::string::npos) << cases.error().message;
}

TEST(ParseGtestList, CaseBeforeAnySuiteIsAnError) {
  ExpectListError("  Adds\nMath.\n  Subtracts\n", "line 1: a case line before any suite line");
  ExpectListError("Running main() from gtest_main.cc\n  Adds\n", "line 2:");
}

TEST(ParseGtestList, StrayLineInTheListingIsAnError) {
  ExpectListError("Math.\n  Adds\nSegmentation fault (core dumped)\n",
                  "line 3: neither a suite nor a case line: 'Segmentation fault (core dumped)'");
  ExpectListError("Math.\n  Adds and more\n", "line 2: not a case line: '  Adds and more'");
}

TEST(ParseGtestList, SuiteWithoutCasesIsAnError) {
  ExpectListError("Math.\nPhysics.\n  Falls\n", "line 1: a suite line without cases: 'Math.'");
  ExpectListError("Math.\n  Adds\nPhysics.\n", "line 3: a suite line without cases");
}

TEST(ParseGtestList, OutputThatIsNotAListingIsAnError) {
  // A program that ignores --gtest_list_tests and runs: nothing in it is a listing line.
  ExpectListError(
      "Running main() from gtest_main.cc\n[==========] Running 1 test from 1 test suite.\n"
      "[ RUN      ] A.x\n[       OK ] A.x (0 ms)\n",
      "line 2: not a test listing: '[==========] Running 1 test from 1 test suite.'");
  ExpectListError("hello world\n", "line 1: not a test listing: 'hello world'");
}

TEST(ParseGtestList, ErrorQuotesALongLineShortened) {
  std::string line(1000, 'x');
  auto cases = ParseGtestList("A.\n  a\n" + line + " y\n");
  ASSERT_FALSE(cases.ok());
  EXPECT_LT(cases.error().message.size(), 300u);
  EXPECT_NE(cases.error().message.find("line 3"), std::string::npos);
}

// --- ParseGtestJson ------------------------------------------------------------------------

// tf_gtest --gtest_filter=Basic.Passes:Basic.Fails:Basic.Skipped:Typed*:Small*:Slow*:
// Basic.DISABLED_Ignored with GTEST_OUTPUT=json, trimmed (Typed/1 and two params dropped).
constexpr std::string_view kRealJson = R"({
  "tests": 10,
  "failures": 2,
  "disabled": 1,
  "errors": 0,
  "timestamp": "2026-11-26T13:19:14Z",
  "time": "0.05s",
  "name": "AllTests",
  "testsuites": [
    {
      "name": "Basic",
      "tests": 4,
      "failures": 1,
      "disabled": 1,
      "errors": 0,
      "timestamp": "2026-11-26T13:19:14Z",
      "time": "0s",
      "testsuite": [
        {
          "name": "Passes",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 12,
          "status": "RUN",
          "result": "COMPLETED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0s",
          "classname": "Basic"
        },
        {
          "name": "Fails",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 16,
          "status": "RUN",
          "result": "COMPLETED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0s",
          "classname": "Basic",
          "failures": [
            {
              "failure": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc:18\nExpected equality of these values:\n  four\n    Which is: 4\n  5\ntf_gtest: two plus two",
              "type": ""
            }
          ]
        },
        {
          "name": "Skipped",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 21,
          "status": "RUN",
          "result": "SKIPPED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0s",
          "classname": "Basic"
        },
        {
          "name": "DISABLED_Ignored",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 32,
          "status": "NOTRUN",
          "result": "SUPPRESSED",
          "timestamp": "1970-01-01T00:00:00Z",
          "time": "0s",
          "classname": "Basic"
        }
      ]
    },
    {
      "name": "Typed\/0",
      "tests": 1,
      "failures": 0,
      "disabled": 0,
      "errors": 0,
      "timestamp": "2026-11-26T13:19:14Z",
      "time": "0s",
      "testsuite": [
        {
          "name": "ZeroIsFalse",
          "type_param": "int",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 39,
          "status": "RUN",
          "result": "COMPLETED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0s",
          "classname": "Typed\/0"
        }
      ]
    },
    {
      "name": "Slow",
      "tests": 1,
      "failures": 0,
      "disabled": 0,
      "errors": 0,
      "timestamp": "2026-11-26T13:19:14Z",
      "time": "0.05s",
      "testsuite": [
        {
          "name": "TakesAMoment",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 47,
          "status": "RUN",
          "result": "COMPLETED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0.05s",
          "classname": "Slow"
        }
      ]
    },
    {
      "name": "Small\/Param",
      "tests": 3,
      "failures": 1,
      "disabled": 0,
      "errors": 0,
      "timestamp": "2026-11-26T13:19:14Z",
      "time": "0s",
      "testsuite": [
        {
          "name": "BelowThree\/2",
          "value_param": "3",
          "file": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc",
          "line": 43,
          "status": "RUN",
          "result": "COMPLETED",
          "timestamp": "2026-11-26T13:19:14Z",
          "time": "0s",
          "classname": "Small\/Param",
          "failures": [
            {
              "failure": "\/work\/main\/tests\/fixtures\/gtest\/tf_gtest.cc:43\nExpected: (GetParam()) < (3), actual: 3 vs 3\ntf_gtest: param too big",
              "type": ""
            }
          ]
        }
      ]
    }
  ]
})";

// The same run's stdout, around the skipped case.
constexpr std::string_view kRealConsole =
    "[ RUN      ] Basic.Fails\n"
    "/work/main/tests/fixtures/gtest/tf_gtest.cc:18: Failure\n"
    "Expected equality of these values:\n"
    "  four\n"
    "    Which is: 4\n"
    "  5\n"
    "tf_gtest: two plus two\n"
    "[  FAILED  ] Basic.Fails (0 ms)\n"
    "[ RUN      ] Basic.Skipped\n"
    "/work/main/tests/fixtures/gtest/tf_gtest.cc:21: Skipped\n"
    "tf_gtest: not today\n"
    "[  SKIPPED ] Basic.Skipped (0 ms)\n"
    "[ DISABLED ] Basic.DISABLED_Ignored\n"
    "[----------] 3 tests from Basic (0 ms total)\n";

TEST(ParseGtestJson, RealReport) {
  auto results = ParseGtestJson(kRealJson);
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 6u);  // DISABLED_Ignored did not run
  const auto& r = *results;
  EXPECT_EQ(r[0].name, "Basic.Passes");
  EXPECT_EQ(r[0].status, Status::kPassed);
  EXPECT_EQ(r[0].message, "");
  EXPECT_EQ(r[1].name, "Basic.Fails");
  EXPECT_EQ(r[1].status, Status::kFailed);
  EXPECT_EQ(r[1].message,
            "/work/main/tests/fixtures/gtest/tf_gtest.cc:18\nExpected equality of these values:\n"
            "  four\n    Which is: 4\n  5\ntf_gtest: two plus two");
  EXPECT_EQ(r[2].name, "Basic.Skipped");
  EXPECT_EQ(r[2].status, Status::kSkipped);
  EXPECT_EQ(r[2].message, "");  // gtest 1.12 does not write the skip message to the JSON
  EXPECT_EQ(r[3].name, "Typed/0.ZeroIsFalse");
  EXPECT_EQ(r[3].status, Status::kPassed);
  EXPECT_EQ(r[4].name, "Slow.TakesAMoment");
  EXPECT_EQ(r[4].duration, milliseconds(50));
  EXPECT_EQ(r[5].name, "Small/Param.BelowThree/2");
  EXPECT_EQ(r[5].status, Status::kFailed);
  EXPECT_NE(r[5].message.find("tf_gtest: param too big"), std::string::npos);
}

TEST(ParseGtestJson, SkipMessageComesFromTheConsole) {
  auto results = ParseGtestJson(kRealJson, kRealConsole);
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_EQ((*results)[2].message, "tf_gtest: not today");
  EXPECT_EQ((*results)[0].message, "");  // a pass gets no message from the console
}

std::string OneCase(std::string_view fields) {
  return R"({"testsuites": [{"name": "S", "testsuite": [{"name": "c", )" + std::string(fields) +
         "}]}]}";
}

TEST(ParseGtestJson, SkipMessageFromConsoleEdgeCases) {
  std::string json = OneCase(R"("status": "RUN", "result": "SKIPPED", "time": "0s")");
  auto message = [&](std::string_view console) {
    auto results = ParseGtestJson(json, console);
    EXPECT_TRUE(results.ok());
    return results.ok() && results->size() == 1 ? (*results)[0].message : "?";
  };
  // Multi-line message; output the case printed before the skip is not part of it.
  EXPECT_EQ(message("[ RUN      ] S.c\nnoise: Skipped\nfoo\nf.cc:3: Skipped\nline 1\nline 2\n"
                    "[  SKIPPED ] S.c (1 ms)\n"),
            "line 1\nline 2");
  EXPECT_EQ(message("[ RUN      ] S.c\nf.cc:3: Skipped\n\n[  SKIPPED ] S.c (0 ms)\n"), "");
  // Another case whose name starts with this one's does not end the block.
  EXPECT_EQ(message("[ RUN      ] S.c\nf.cc:3: Skipped\nwhy\n[  SKIPPED ] S.cd (0 ms)\n"
                    "[  SKIPPED ] S.c\n"),
            "why\n[  SKIPPED ] S.cd (0 ms)");
  EXPECT_EQ(message("[ RUN      ] S.c\n[  SKIPPED ] S.c (0 ms)\n"), "");
  EXPECT_EQ(message("[ RUN      ] S.c\nf.cc:3: Skipped\ncut off"), "");  // crashed, truncated
  EXPECT_EQ(message("no such case here\n"), "");
}

TEST(ParseGtestJson, FailureMessagesAreJoinedByBlankLines) {
  auto results = ParseGtestJson(OneCase(R"("status": "RUN", "result": "COMPLETED",
      "time": "0.002s", "failures": [{"failure": "a.cc:1\nfirst", "type": ""},
                                     {"failure": "a.cc:2\nsecond", "type": ""}])"));
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].name, "S.c");
  EXPECT_EQ((*results)[0].status, Status::kFailed);
  EXPECT_EQ((*results)[0].message, "a.cc:1\nfirst\n\na.cc:2\nsecond");
  EXPECT_EQ((*results)[0].duration, milliseconds(2));
}

TEST(ParseGtestJson, FailuresWinOverSkipped) {
  auto results = ParseGtestJson(OneCase(
      R"("status": "RUN", "result": "SKIPPED", "time": "0s", "failures": [{"failure": "x"}])"));
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_EQ((*results)[0].status, Status::kFailed);
}

TEST(ParseGtestJson, Durations) {
  auto duration = [](std::string_view time) {
    auto results = ParseGtestJson(
        OneCase(R"("status": "RUN", "result": "COMPLETED", "time": ")" + std::string(time) + "\""));
    EXPECT_TRUE(results.ok());
    return results.ok() ? (*results)[0].duration : milliseconds(-1);
  };
  EXPECT_EQ(duration("0s"), milliseconds(0));
  EXPECT_EQ(duration("0.123s"), milliseconds(123));
  EXPECT_EQ(duration("1.5s"), milliseconds(1500));
  EXPECT_EQ(duration("12345.7s"), milliseconds(12345700));
  EXPECT_EQ(duration("1.23457e+06s"), milliseconds(1234570000));
  EXPECT_EQ(duration("garbage"), milliseconds(0));  // a bad time is not worth losing a result
  EXPECT_EQ(duration("-1s"), milliseconds(0));
}

TEST(ParseGtestJson, OlderReportWithoutResultField) {
  auto results = ParseGtestJson(OneCase(R"("status": "RUN", "time": "0s")"));
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_EQ((*results)[0].status, Status::kPassed);
}

TEST(ParseGtestJson, NotRunAndSuppressedAreLeftOut) {
  auto results = ParseGtestJson(OneCase(R"("status": "NOTRUN", "result": "SUPPRESSED")"));
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_TRUE(results->empty());
}

TEST(ParseGtestJson, FailureOutsideAnyCase) {
  // gtest's stanza for a failing global Environment (OutputJsonTestSuiteForTestResult).
  auto results = ParseGtestJson(R"({"testsuites": [{"name": "NonTestSuiteFailure", "tests": 1,
      "testsuite": [{"name": "", "status": "RUN", "result": "COMPLETED", "time": "0s",
      "classname": "", "failures": [{"failure": "env.cc:9\nFailed\nsetup broke", "type": ""}]}]}]})");
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].name, "NonTestSuiteFailure");
  EXPECT_EQ((*results)[0].status, Status::kFailed);
}

TEST(ParseGtestJson, NoCasesIsAnEmptyReport) {
  auto results = ParseGtestJson(R"({"tests": 0, "testsuites": []})");
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_TRUE(results->empty());
}

TEST(ParseGtestJson, BytesThatAreNotUtf8AreReplaced) {
  // gtest copies a message's bytes as they are; 0xFF and a lone 0xC3 are not UTF-8, "\303\251"
  // (é) is, and each bad byte becomes U+FFFD ("\357\277\275").
  auto results =
      ParseGtestJson(OneCase(R"("status": "RUN", "time": "0s", "failures": [{"failure": ")"
                             "a\377b\303 caf\303\251\"}]"));
  ASSERT_TRUE(results.ok()) << results.error().message;
  EXPECT_EQ((*results)[0].message, "a\357\277\275b\357\277\275 caf\303\251");
}

void ExpectJsonError(std::string_view json, std::string_view expected) {
  auto results = ParseGtestJson(json);
  ASSERT_FALSE(results.ok()) << json;
  EXPECT_NE(results.error().message.find(expected), std::string::npos) << results.error().message;
}

TEST(ParseGtestJson, DocumentsThatAreNotGtestReportsAreErrors) {
  ExpectJsonError("", "not a gtest JSON report");
  ExpectJsonError("{\"testsuites\": [", "not a gtest JSON report");
  ExpectJsonError(kRealJson.substr(0, kRealJson.size() / 2), "not a gtest JSON report");
  ExpectJsonError("[1, 2]", "not an object");
  ExpectJsonError("{\"tests\": 1}", "no array \"testsuites\"");
  ExpectJsonError(R"({"testsuites": [{"name": "S"}]})", "testsuites[0]: no array \"testsuite\"");
  ExpectJsonError(R"({"testsuites": [{"name": 5, "testsuite": []}]})",
                  "testsuites[0]: no string \"name\"");
  ExpectJsonError(OneCase(R"("time": "0s")"), "testsuites[0].testsuite[0]: no string \"status\"");
  ExpectJsonError(OneCase(R"("status": "MAYBE")"), "unknown status \"MAYBE\"");
  ExpectJsonError(OneCase(R"("status": "RUN", "result": "WEIRD")"), "unknown result \"WEIRD\"");
  ExpectJsonError(OneCase(R"("status": "RUN", "failures": {"failure": "x"})"),
                  "\"failures\" is not an array");
  ExpectJsonError(OneCase(R"("status": "RUN", "failures": [{"type": ""}])"),
                  "failures[0]: no string \"failure\"");
  ExpectJsonError(R"({"testsuites": [{"name": "S", "testsuite": [7]}]})", "not an object");
}

TEST(ParseGtestJson, ContainersWhereStringsBelongAreErrors) {
  ExpectJsonError(R"({"testsuites": [{"name": {"x": 1}, "testsuite": []}]})",
                  "testsuites[0]: no string \"name\"");
  ExpectJsonError(R"({"testsuites": {"name": "S"}})", "no array \"testsuites\"");
  ExpectJsonError(R"({"testsuites": [{"name": "S", "testsuite": {}}]})",
                  "testsuites[0]: no array \"testsuite\"");
  ExpectJsonError(OneCase(R"("status": ["RUN"])"),
                  "testsuites[0].testsuite[0]: no string \"status\"");
  ExpectJsonError(OneCase(R"("status": "RUN", "result": {})"), "no string \"result\"");
  ExpectJsonError(OneCase(R"("status": "RUN", "failures": [{"failure": ["x"]}])"),
                  "testsuites[0].testsuite[0].failures[0]: no string \"failure\"");
  ExpectJsonError(OneCase(R"("status": "RUN", "failures": [3])"),
                  "testsuites[0].testsuite[0].failures[0]: not an object");
  // The second suite's second case: the places count across the document.
  ExpectJsonError(R"({"testsuites": [{"name": "A", "testsuite": []},
      {"name": "B", "testsuite": [{"name": "x", "status": "RUN"}, {"name": "y"}]}]})",
                  "testsuites[1].testsuite[1]: no string \"status\"");
  // A suite's own error comes before its cases'.
  ExpectJsonError(R"({"testsuites": [{"testsuite": [{"name": "y"}]}]})",
                  "testsuites[0]: no string \"name\"");
}

TEST(ParseGtestJson, FieldsInAnyOrderAndUnknownOnesNestedArePassedOver) {
  auto results = ParseGtestJson(R"({"testsuites": [{"testsuite": [
      {"properties": {"name": 5, "failures": [1, {"failure": 2}]}, "time": "0.25s",
       "failures": [{"type": "", "failure": "one", "extra": [{"failure": 7}]}, {"failure": "two"}],
       "status": "RUN", "name": "c"},
      {"name": "d", "status": "NOTRUN"}], "name": "S", "tests": [1, 2]}], "extra": {"testsuites": 1}})");
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 1u);
  EXPECT_EQ((*results)[0].name, "S.c");
  EXPECT_EQ((*results)[0].status, Status::kFailed);
  EXPECT_EQ((*results)[0].message, "one\n\ntwo");
  EXPECT_EQ((*results)[0].duration, Millis(250));
}

TEST(ParseGtestJson, ListingReportIsAnError) {
  // GTEST_OUTPUT=json with --gtest_list_tests writes cases without a status: not results.
  ExpectJsonError(R"({"tests": 1, "name": "AllTests", "testsuites": [{"name": "A", "tests": 1,
      "testsuite": [{"name": "x", "file": "a.cc", "line": 3}]}]})",
                  "no string \"status\"");
}

// --- ParseGtestListJson --------------------------------------------------------------------

// tests/fixtures/gtest/tf_gtest --gtest_list_tests --gtest_output=json:FILE (gtest 1.12), cut to
// three suites.
constexpr std::string_view kRealJsonListing = R"({
  "tests": 5,
  "name": "AllTests",
  "testsuites": [
    {
      "name": "Basic",
      "tests": 2,
      "testsuite": [
        {
          "name": "Passes",
          "file": "tf_gtest.cc",
          "line": 12
        },
        {
          "name": "DISABLED_Ignored",
          "file": "tf_gtest.cc",
          "line": 40
        }
      ]
    },
    {
      "name": "Typed\/0",
      "tests": 1,
      "testsuite": [
        {
          "name": "ZeroIsFalse",
          "type_param": "int",
          "file": "tf_gtest.cc",
          "line": 50
        }
      ]
    },
    {
      "name": "Small\/Param",
      "tests": 2,
      "testsuite": [
        {
          "name": "BelowThree\/0",
          "value_param": "1",
          "file": "tf_gtest.cc",
          "line": 60
        },
        {
          "name": "BelowThree\/1",
          "value_param": "{ \"name\": [1, 2] }",
          "file": "tf_gtest.cc",
          "line": 60
        }
      ]
    }
  ]
}
)";

TEST(ParseGtestListJson, RealListing) {
  auto cases = ParseGtestListJson(kRealJsonListing);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases), (std::vector<std::string>{
                               "Basic.Passes", "Basic.DISABLED_Ignored", "Typed/0.ZeroIsFalse",
                               "Small/Param.BelowThree/0", "Small/Param.BelowThree/1"}));
  EXPECT_EQ(DisabledNames(*cases), std::vector<std::string>{"Basic.DISABLED_Ignored"});
}

TEST(ParseGtestListJson, ValuesGtestMayAddAnywhereArePassedOver) {
  auto cases = ParseGtestListJson(
      R"({"extra": {"name": "X"}, "testsuites": [{"props": [{"name": "no"}], "name": "S",)"
      R"( "testsuite": [{"name": "a", "more": {"name": "no"}}, {"name": "b"}]}], "tail": [1]})");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases), (std::vector<std::string>{"S.a", "S.b"}));
}

TEST(ParseGtestListJson, AnEmptyBinaryListsNothing) {
  auto cases = ParseGtestListJson(R"({"tests": 0, "name": "AllTests", "testsuites": []})");
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_TRUE(cases->empty());
}

TEST(ParseGtestListJson, DocumentsThatAreNotListingsAreErrors) {
  auto expect_error = [](std::string_view text, const std::string& part) {
    auto cases = ParseGtestListJson(text);
    ASSERT_FALSE(cases.ok()) << text;
    EXPECT_NE(cases.error().message.find("not a gtest JSON listing"), std::string::npos)
        << cases.error().message;
    EXPECT_NE(cases.error().message.find(part), std::string::npos) << cases.error().message;
  };
  expect_error("", "at byte");
  expect_error("[1, 2]", "not a JSON object");
  expect_error(R"({"tests": 1})", "no \"testsuites\"");
  expect_error(R"({"testsuites": [{"name": "S", "testsuite": [{"line": 3}]}]})",
               "a case without a name");
  expect_error(R"({"testsuites": [{"testsuite": [{"name": "a"}]}]})", "a suite without a name");
  expect_error(R"({"testsuites": [{"name": "S", "testsuite": [{"name": "a"})", "at byte");
}

TEST(ParseGtestListJson, BytesThatAreNotUtf8DoNotStopTheListing) {
  std::string text =
      R"({"testsuites": [{"name": "S", "testsuite": [{"name": "a", "value_param": ")";
  text += "\xff\xfe";
  text += R"("}]}]})";
  auto cases = ParseGtestListJson(text);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases), std::vector<std::string>{"S.a"});
}

// --- GtestFilterFor ------------------------------------------------------------------------

TEST(GtestFilterFor, JoinsWithColons) {
  EXPECT_EQ(GtestFilterFor({}), "");
  EXPECT_EQ(GtestFilterFor({"A.x"}), "A.x");
  EXPECT_EQ(GtestFilterFor({"A.x", "Typed/0.y", "Inst/P.z/1"}), "A.x:Typed/0.y:Inst/P.z/1");
}

// --- IsGtestBinary -------------------------------------------------------------------------

class IsGtestBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    dir_ = temp_.path();
  }

  std::string Write(const std::string& name, const std::string& content) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }

  // An ELF header, padding so `mark` starts at `offset`, the mark, more padding.
  std::string ElfWithMarkAt(std::size_t offset, std::string_view mark) {
    std::string content = "\177ELF";
    content.resize(offset, 'x');
    content += mark;
    content.resize(content.size() + 100, 'y');
    return Write("elf", content);
  }

  test::TempDir temp_{"tf_gtest_"};  // removed with the fixture
  std::filesystem::path dir_;
};

TEST_F(IsGtestBinaryTest, ThisTestBinaryIsOne) {
  EXPECT_TRUE(IsGtestBinary(std::filesystem::read_symlink("/proc/self/exe").string()));
}

TEST_F(IsGtestBinaryTest, OrdinaryBinariesAreNot) {
  EXPECT_FALSE(IsGtestBinary("/bin/sh"));
  EXPECT_FALSE(IsGtestBinary("/bin/true"));
}

TEST_F(IsGtestBinaryTest, ScriptsAreNotEvenWhenTheyMentionGtest) {
  std::string script = Write("run.sh",
                             "#!/bin/sh\nexec ./tests --gtest_list_tests --gtest_filter=\"$1\"\n"
                             "# _ZN7testing4Test _ZN7testing8internal\n");
  ::chmod(script.c_str(), 0755);
  EXPECT_FALSE(IsGtestBinary(script));
}

TEST_F(IsGtestBinaryTest, EachMarkIsFound) {
  for (std::string_view mark :
       {"--gtest_list_tests", "gtest_filter", "_ZN7testing4TestC2Ev", "_ZN7testing8internal"}) {
    EXPECT_TRUE(IsGtestBinary(ElfWithMarkAt(64, mark))) << mark;
  }
  EXPECT_FALSE(IsGtestBinary(ElfWithMarkAt(64, "gtest_filte")));
  EXPECT_FALSE(IsGtestBinary(ElfWithMarkAt(64, "_ZN7testing4Tes")));
}

TEST_F(IsGtestBinaryTest, MarkSplitAcrossChunksIsFound) {
  constexpr std::string_view kMark = "--gtest_list_tests";
  for (std::size_t before : {std::size_t{1}, std::size_t{9}, kMark.size() - 1}) {
    EXPECT_TRUE(IsGtestBinary(ElfWithMarkAt(kGtestScanChunkBytes - before, kMark))) << before;
  }
  EXPECT_TRUE(IsGtestBinary(ElfWithMarkAt(kGtestScanChunkBytes, kMark)));
  EXPECT_TRUE(IsGtestBinary(ElfWithMarkAt(2 * kGtestScanChunkBytes - 5, "_ZN7testing8internal")));
}

TEST_F(IsGtestBinaryTest, MarkBeyondTheCapIsNotSeen) {
  // Sparse: the file occupies no space, but reading it covers the whole cap.
  std::string path = Write("big", "\177ELF");
  std::filesystem::resize_file(path, kGtestScanMaxBytes);
  std::ofstream(path, std::ios::binary | std::ios::app) << "--gtest_list_tests";
  EXPECT_FALSE(IsGtestBinary(path));
}

TEST_F(IsGtestBinaryTest, WhatCannotBeReadIsNot) {
  EXPECT_FALSE(IsGtestBinary((dir_ / "missing").string()));
  EXPECT_FALSE(IsGtestBinary(dir_.string()));
  EXPECT_FALSE(IsGtestBinary(Write("empty", "")));
  EXPECT_FALSE(IsGtestBinary(Write("short", "\177E")));
  std::string fifo = (dir_ / "fifo").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_FALSE(IsGtestBinary(fifo));  // and does not block waiting for a writer
  std::string unreadable = ElfWithMarkAt(64, "gtest_filter");
  ::chmod(unreadable.c_str(), 0);
  if (::geteuid() != 0) {  // root reads it anyway
    EXPECT_FALSE(IsGtestBinary(unreadable));
  }
}

}  // namespace
}  // namespace testfarm::coordinator
