#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/ctest_import.h"

namespace testfarm::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

const char* const kOrigin = "ctest build/";

// Shaped like CMake 3.25's `ctest --show-only=json-v1` output.
const char* const kFullJson = R"({
  "backtraceGraph": {"commands": ["add_test"], "files": ["/src/CMakeLists.txt"],
                     "nodes": [{"file": 0}, {"command": 0, "file": 0, "line": 7, "parent": 0}]},
  "kind": "ctestInfo",
  "tests": [
    {
      "command": ["/b/g", "--gtest_filter=MySuite.Works", "--gtest_also_run_disabled_tests"],
      "name": "MySuite.Works",
      "properties": [
        {"name": "SKIP_REGULAR_EXPRESSION", "value": ["\\[  SKIPPED \\]"]},
        {"name": "LABELS", "value": ["gt"]},
        {"name": "WORKING_DIRECTORY", "value": "/b"}
      ]
    },
    {
      "backtrace": 1,
      "command": ["/b/ok", "--flag", "a b"],
      "name": "ok",
      "properties": [
        {"name": "ENVIRONMENT", "value": ["A=1", "B=x=y", "EMPTY=", "UNSET_ME"]},
        {"name": "LABELS", "value": ["l1", "l2"]},
        {"name": "PROCESSORS", "value": 2},
        {"name": "RUN_SERIAL", "value": true},
        {"name": "SKIP_RETURN_CODE", "value": 77},
        {"name": "TIMEOUT", "value": 2.5},
        {"name": "WILL_FAIL", "value": true},
        {"name": "WORKING_DIRECTORY", "value": "/tmp"}
      ]
    },
    {
      "command": ["/b/ok"],
      "name": "dis",
      "properties": [{"name": "DISABLED", "value": true}]
    },
    {
      "backtrace": 1,
      "name": "missing",
      "properties": [{"name": "WORKING_DIRECTORY", "value": "/b"}]
    },
    {
      "command": ["/b/ok"],
      "name": "t0",
      "properties": [{"name": "TIMEOUT", "value": 0.0}]
    },
    {"command": ["/b/bare"], "name": "bare"}
  ],
  "version": {"major": 1, "minor": 0}
})";

TEST(CtestImport, AllProperties) {
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(kFullJson, kOrigin);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  ASSERT_EQ(suites->size(), 6u);

  const SuiteSpec& works = (*suites)[0];
  EXPECT_EQ(works.name, "MySuite.Works");
  EXPECT_THAT(works.command, ElementsAre("/b/g", "--gtest_filter=MySuite.Works",
                                         "--gtest_also_run_disabled_tests"));
  EXPECT_EQ(works.kind, SuiteKind::kPlain);
  EXPECT_EQ(works.cwd, "/b");
  EXPECT_THAT(works.labels, ElementsAre("gt"));
  EXPECT_EQ(works.origin, "ctest build/: MySuite.Works");
  EXPECT_THAT(works.output_rules.skip, ElementsAre("\\[  SKIPPED \\]"));
  EXPECT_FALSE(works.timeout.has_value());
  EXPECT_FALSE(works.disabled);

  const SuiteSpec& ok = (*suites)[1];
  EXPECT_EQ(ok.name, "ok");
  EXPECT_THAT(ok.command, ElementsAre("/b/ok", "--flag", "a b"));
  // "NAME" without '=' (CTest: unset) cannot be expressed and is dropped.
  EXPECT_THAT(ok.env, ElementsAre(Pair("A", "1"), Pair("B", "x=y"), Pair("EMPTY", "")));
  EXPECT_THAT(ok.labels, ElementsAre("l1", "l2"));
  EXPECT_TRUE(ok.run_serial);
  EXPECT_EQ(ok.skip_return_code, 77);
  EXPECT_EQ(ok.timeout, Millis(2500));
  EXPECT_TRUE(ok.will_fail);
  EXPECT_FALSE(ok.disabled);
  EXPECT_EQ(ok.cwd, "/tmp");
  EXPECT_EQ(ok.ordering.processors, 2u);
  EXPECT_TRUE(ok.cannot_run.empty());

  const SuiteSpec& dis = (*suites)[2];
  EXPECT_TRUE(dis.disabled);
  EXPECT_THAT(dis.command, ElementsAre("/b/ok"));
  EXPECT_TRUE(dis.cannot_run.empty());

  // No command: CTest could not find the executable. It cannot run, and that is a failure
  // (ctest: "Not Run"), never a skip: only DISABLED skips.
  const SuiteSpec& missing = (*suites)[3];
  EXPECT_EQ(missing.name, "missing");
  EXPECT_TRUE(missing.command.empty());
  EXPECT_FALSE(missing.disabled);
  EXPECT_EQ(missing.cannot_run,
            "ctest could not find the command for this test (is it built?); add_test at "
            "/src/CMakeLists.txt:7");
  EXPECT_EQ(missing.cwd, "/b");

  // TIMEOUT 0 is CTest's "none of its own": the run's timeout applies.
  EXPECT_FALSE((*suites)[4].timeout.has_value());

  const SuiteSpec& bare = (*suites)[5];
  EXPECT_THAT(bare.command, ElementsAre("/b/bare"));
  EXPECT_TRUE(bare.env.empty());
  EXPECT_TRUE(bare.labels.empty());
  EXPECT_TRUE(bare.cwd.empty());
  EXPECT_FALSE(bare.will_fail || bare.run_serial || bare.disabled);
  EXPECT_FALSE(bare.skip_return_code.has_value());
}

TEST(CtestImport, FloatAndIntegerTimeouts) {
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(
      R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "TIMEOUT", "value": 0.0015}]},
                    {"name": "b", "command": ["/b"], "properties": [{"name": "TIMEOUT", "value": 7}]},
                    {"name": "c", "command": ["/c"], "properties": [{"name": "TIMEOUT", "value": -1}]},
                    {"name": "d", "command": ["/d"], "properties": [{"name": "TIMEOUT", "value": 0.0004}]}]})",
      kOrigin);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_EQ((*suites)[0].timeout, Millis(2));
  EXPECT_EQ((*suites)[1].timeout, Millis(7000));
  EXPECT_FALSE((*suites)[2].timeout.has_value());
  EXPECT_EQ((*suites)[3].timeout, Millis(1)) << "a positive timeout never becomes none";
}

TEST(CtestImport, ATestWithoutACommandCannotRunUnlessDisabled) {
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(
      R"({"tests": [{"name": "a", "command": [], "properties": [{"name": "DISABLED", "value": false}]},
                    {"name": "b", "command": [""]},
                    {"name": "c", "backtrace": 9, "backtraceGraph": 3},
                    {"name": "d", "properties": [{"name": "DISABLED", "value": true}]}]})",
      kOrigin);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  const std::string reason = "ctest could not find the command for this test (is it built?)";
  EXPECT_FALSE((*suites)[0].disabled);
  EXPECT_EQ((*suites)[0].cannot_run, reason);
  EXPECT_EQ((*suites)[1].cannot_run, reason);
  EXPECT_EQ((*suites)[2].cannot_run, reason) << "a backtrace that leads nowhere is left out";
  EXPECT_TRUE((*suites)[3].disabled);
  EXPECT_TRUE((*suites)[3].cannot_run.empty()) << "disabled: skipped, whatever its command";
}

TEST(CtestImport, OrderingProperties) {
  // Shaped like ctest 3.25's json-v1: lists as arrays of strings, PROCESSORS as a number.
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(
      R"({"tests": [
        {"name": "setup", "command": ["/s"], "properties": [
          {"name": "FIXTURES_SETUP", "value": ["db", "net"]},
          {"name": "RESOURCE_LOCK", "value": ["disk"]}]},
        {"name": "user", "command": ["/u"], "properties": [
          {"name": "DEPENDS", "value": ["setup", "other"]},
          {"name": "FIXTURES_REQUIRED", "value": ["db"]},
          {"name": "PROCESSORS", "value": 3}]},
        {"name": "cleanup", "command": ["/c"], "properties": [
          {"name": "FIXTURES_CLEANUP", "value": "db"},
          {"name": "PROCESSORS", "value": 0}]},
        {"name": "neg", "command": ["/n"], "properties": [{"name": "PROCESSORS", "value": -4}]}
      ]})",
      kOrigin);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  const Ordering& setup = (*suites)[0].ordering;
  EXPECT_THAT(setup.fixtures_setup, ElementsAre("db", "net"));
  EXPECT_THAT(setup.resource_locks, ElementsAre("disk"));
  EXPECT_EQ(setup.processors, 1u);
  const Ordering& user = (*suites)[1].ordering;
  EXPECT_THAT(user.depends, ElementsAre("setup", "other"));
  EXPECT_THAT(user.fixtures_required, ElementsAre("db"));
  EXPECT_EQ(user.processors, 3u);
  const Ordering& cleanup = (*suites)[2].ordering;
  EXPECT_THAT(cleanup.fixtures_cleanup, ElementsAre("db")) << "a lone string is a list of one";
  EXPECT_EQ(cleanup.processors, 1u) << "CTest takes PROCESSORS below 1 as 1";
  EXPECT_EQ((*suites)[3].ordering.processors, 1u);
}

TEST(CtestImport, UnhonouredPropertiesAreWarnedAboutOncePerProperty) {
  std::string json = R"({"tests": [)";
  for (int i = 0; i < 7; ++i) {
    json += (i == 0 ? "" : ",") + std::string(R"({"name": "t)") + std::to_string(i) +
            R"(", "command": ["/t"], "properties": [
              {"name": "RESOURCE_GROUPS", "value": [{"requirements": [{".type": "gpus", "slots": 1}]}]},
              {"name": "COST", "value": 2.0},
              {"name": "ATTACHED_FILES", "value": ["/x"]},
              {"name": "MEASUREMENT", "value": [{"measurement": "a", "value": "b"}]}]})";
  }
  json += R"(, {"name": "lone", "command": ["/t"], "properties": [
                 {"name": "REQUIRED_FILES", "value": ["/a"]},
                 {"name": "SOME_FUTURE_PROPERTY", "value": 1}]}]})";
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(json, kOrigin, &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_THAT(warnings,
              ElementsAre("ctest build/: test 'lone' uses REQUIRED_FILES, which testfarm does not "
                          "honour (it runs without it)",
                          "ctest build/: 7 tests use RESOURCE_GROUPS, which testfarm does not "
                          "honour (they run without it): 't0', 't1', 't2', 't3', 't4' and 2 more",
                          "ctest build/: test 'lone' uses SOME_FUTURE_PROPERTY, which testfarm "
                          "does not honour (it runs without it)"))
      << "COST, ATTACHED_FILES and MEASUREMENT change nothing about a run: no warning";
}

TEST(CtestImport, MalformedJson) {
  Result<std::vector<SuiteSpec>> result = ParseCtestJson(R"({"tests": [)", kOrigin);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message, StartsWith("ctest build/: malformed JSON: parse error at "));
  EXPECT_THAT(result.error().message, Not(HasSubstr("[json.exception")));

  result = ParseCtestJson("", kOrigin);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message, StartsWith("ctest build/: malformed JSON: "));

  result = ParseCtestJson("CMake Error: not json", kOrigin);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(result.error().message, StartsWith("ctest build/: malformed JSON: "));
}

TEST(CtestImport, NotAnObject) {
  for (const char* json : {"[]", "42", "\"tests\"", "null"}) {
    Result<std::vector<SuiteSpec>> result = ParseCtestJson(json, kOrigin);
    ASSERT_FALSE(result.ok()) << json;
    EXPECT_EQ(result.error().message, "ctest build/: expected a JSON object (ctest json-v1)")
        << json;
  }
}

TEST(CtestImport, NoTests) {
  Result<std::vector<SuiteSpec>> result = ParseCtestJson(
      R"({"backtraceGraph": {"commands": [], "files": [], "nodes": []}, "kind": "ctestInfo",
          "tests": [], "version": {"major": 1, "minor": 0}})",
      kOrigin);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().message, "no tests registered in ctest build/");
}

struct BadCase {
  const char* json;
  const char* message;
};

TEST(CtestImport, WrongShapesAreErrorsNamingTheProblem) {
  const BadCase cases[] = {
      {R"({"kind": "ctestInfo"})", "ctest build/: expected a \"tests\" array (ctest json-v1)"},
      {R"({"tests": {}})", "ctest build/: expected a \"tests\" array (ctest json-v1)"},
      {R"({"kind": "codemodel", "tests": []})",
       "ctest build/: not ctest json-v1 output (\"kind\" is \"codemodel\")"},
      {R"({"version": {"major": 2, "minor": 0}, "tests": []})",
       "ctest build/: unsupported ctest json version {\"major\":2,\"minor\":0} (expected major "
       "1)"},
      {R"({"tests": [3]})", "ctest build/: test #1: expected an object"},
      {R"({"tests": [{"command": ["/a"]}]})",
       "ctest build/: test #1: expected a non-empty string \"name\""},
      {R"({"tests": [{"name": 5}]})",
       "ctest build/: test #1: expected a non-empty string \"name\""},
      {R"({"tests": [{"name": "a", "command": "/a"}]})",
       "ctest build/: test 'a': \"command\": expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a", 1]}]})",
       "ctest build/: test 'a': \"command\": expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": {}}]})",
       "ctest build/: test 'a': \"properties\": expected an array"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"value": 1}]}]})",
       "ctest build/: test 'a': \"properties\": expected {\"name\": ..., \"value\": ...} objects"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "TIMEOUT"}]}]})",
       "ctest build/: test 'a': \"properties\": expected {\"name\": ..., \"value\": ...} objects"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "TIMEOUT", "value": "5"}]}]})",
       "ctest build/: test 'a': property TIMEOUT: expected a number of seconds"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "TIMEOUT", "value": 1e300}]}]})",
       "ctest build/: test 'a': property TIMEOUT: expected a number of seconds"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "ENVIRONMENT", "value": [1]}]}]})",
       "ctest build/: test 'a': property ENVIRONMENT: expected an array of \"NAME=VALUE\" strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "LABELS", "value": {}}]}]})",
       "ctest build/: test 'a': property LABELS: expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "WORKING_DIRECTORY", "value": 1}]}]})",
       "ctest build/: test 'a': property WORKING_DIRECTORY: expected a string"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "WILL_FAIL", "value": "ON"}]}]})",
       "ctest build/: test 'a': property WILL_FAIL: expected true or false"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "RUN_SERIAL", "value": 1}]}]})",
       "ctest build/: test 'a': property RUN_SERIAL: expected true or false"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "DISABLED", "value": null}]}]})",
       "ctest build/: test 'a': property DISABLED: expected true or false"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "DEPENDS", "value": [1]}]}]})",
       "ctest build/: test 'a': property DEPENDS: expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "FIXTURES_REQUIRED", "value": {}}]}]})",
       "ctest build/: test 'a': property FIXTURES_REQUIRED: expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "RESOURCE_LOCK", "value": true}]}]})",
       "ctest build/: test 'a': property RESOURCE_LOCK: expected an array of strings"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "PASS_REGULAR_EXPRESSION", "value": ["ok", 1]}]}]})",
       "ctest build/: test 'a': property PASS_REGULAR_EXPRESSION: expected an array of regular "
       "expressions"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "FAIL_REGULAR_EXPRESSION", "value": ["(x"]}]}]})",
       "ctest build/: test 'a': property FAIL_REGULAR_EXPRESSION: not a regular expression: '(x' "
       "(Unmatched ( or \\()"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "PROCESSORS", "value": "2"}]}]})",
       "ctest build/: test 'a': property PROCESSORS: expected a number of processors (an "
       "integer)"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "PROCESSORS", "value": 1.5}]}]})",
       "ctest build/: test 'a': property PROCESSORS: expected a number of processors (an "
       "integer)"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "PROCESSORS", "value": 99999999999}]}]})",
       "ctest build/: test 'a': property PROCESSORS: expected a number of processors (an "
       "integer up to 1048576)"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "SKIP_RETURN_CODE", "value": 1.5}]}]})",
       "ctest build/: test 'a': property SKIP_RETURN_CODE: expected an exit code (an integer "
       "0-255)"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "SKIP_RETURN_CODE", "value": -1}]}]})",
       "ctest build/: test 'a': property SKIP_RETURN_CODE: expected an exit code (an integer "
       "0-255)"},
      {R"({"tests": [{"name": "a", "command": ["/a"], "properties": [{"name": "SKIP_RETURN_CODE", "value": 18446744073709551615}]}]})",
       "ctest build/: test 'a': property SKIP_RETURN_CODE: expected an exit code (an integer "
       "0-255)"},
  };
  for (const BadCase& c : cases) {
    Result<std::vector<SuiteSpec>> result = ParseCtestJson(c.json, kOrigin);
    ASSERT_FALSE(result.ok()) << c.json;
    EXPECT_EQ(result.error().message, c.message) << c.json;
  }
}

TEST(CtestImport, ListCommand) {
  EXPECT_THAT(CtestListCommand("build dir"),
              ElementsAre("ctest", "--test-dir", "build dir", "--show-only=json-v1"));
}

}  // namespace
}  // namespace testfarm::coordinator
