#include <gtest/gtest.h>

#include "coordinator/outcome.h"

namespace testfarm::coordinator {
namespace {

TestSpec Plain(std::string name) {
  TestSpec t;
  t.name = t.suite = std::move(name);
  t.EditSettings().command = {"/bin/" + t.name};
  return t;
}

TestSpec Case(const std::string& gtest_case) {
  TestSpec t;
  t.suite = "bin";
  t.name = "bin::" + gtest_case;
  t.gtest_case = gtest_case;
  t.EditSettings().command = {"/bin/bin"};
  return t;
}

protocol::JobResult Result(ExitState state, std::string report = {}, std::string error = {}) {
  protocol::JobResult r;
  r.state = std::move(state);
  r.duration_ms = 40;
  r.report = std::move(report);
  r.report_error = std::move(error);
  return r;
}

// A gtest 1.12 JSON report with the given cases: {"name": "A.x", "failure": "..."}.
std::string Json(const std::vector<std::pair<std::string, std::string>>& cases) {
  std::string suites;
  for (const auto& [full, failure] : cases) {
    std::string suite = full.substr(0, full.find('.'));
    std::string name = full.substr(full.find('.') + 1);
    std::string failures =
        failure.empty() ? "" : R"(, "failures": [{"failure": ")" + failure + R"(", "type": ""}])";
    std::string result = failure == "SKIP" ? "SKIPPED" : "COMPLETED";
    if (failure == "SKIP") failures.clear();
    if (!suites.empty()) suites += ",";
    suites += R"({"name": ")" + suite + R"(", "tests": 1, "testsuite": [{"name": ")" + name +
              R"(", "status": "RUN", "result": ")" + result +
              R"(", "time": "0.012s", "classname": ")" + suite + "\"" + failures + "}]}";
  }
  return R"({"tests": 1, "name": "AllTests", "testsuites": [)" + suites + "]}";
}

TEST(Interpret, PlainExitCodes) {
  std::vector<TestSpec> tests = {Plain("ok")};
  auto v = Interpret({0}, false, tests, Result(ExitState::Exited(0)));
  ASSERT_EQ(v.decided.size(), 1u);
  EXPECT_EQ(v.decided[0].state, TestStatus::kPassed);
  v = Interpret({0}, false, tests, Result(ExitState::Exited(3)));
  EXPECT_EQ(v.decided[0].state, TestStatus::kFailed);
  v = Interpret({0}, false, tests, Result(ExitState::Signaled(11, false)));
  EXPECT_EQ(v.decided[0].state, TestStatus::kFailed);
  v = Interpret({0}, false, tests, Result(ExitState::Cancelled("stop")));
  EXPECT_EQ(v.decided[0].state, TestStatus::kCancelled);
}

TEST(Interpret, CtestWillFailAndSkipReturnCode) {
  TestSpec t = Plain("t");
  t.will_fail = true;
  t.skip_return_code = 77;
  std::vector<TestSpec> tests = {t};
  EXPECT_EQ(Interpret({0}, false, tests, Result(ExitState::Exited(1))).decided[0].state,
            TestStatus::kPassed);
  auto zero = Interpret({0}, false, tests, Result(ExitState::Exited(0))).decided[0];
  EXPECT_EQ(zero.state, TestStatus::kFailed);
  EXPECT_NE(zero.reason.find("WILL_FAIL"), std::string::npos);
  auto skip = Interpret({0}, false, tests, Result(ExitState::Exited(77))).decided[0];
  EXPECT_EQ(skip.state, TestStatus::kSkipped);
  EXPECT_NE(skip.reason.find("SKIP_RETURN_CODE"), std::string::npos);
  EXPECT_EQ(Interpret({0}, false, tests, Result(ExitState::Signaled(6, false))).decided[0].state,
            TestStatus::kFailed)
      << "WILL_FAIL inverts exit codes, never crashes";
}

protocol::JobResult WithOutput(ExitState state, std::string out, std::string err = {}) {
  protocol::JobResult r = Result(std::move(state));
  r.stdout_text = std::move(out);
  r.stderr_text = std::move(err);
  return r;
}

TEST(Interpret, CtestSkipRegularExpressionAsGtestDiscoverTestsSetsIt) {
  TestSpec t = Plain("MySuite.Skips");
  t.EditSettings().output_rules.skip = {"\\[  SKIPPED \\]"};
  std::vector<TestSpec> tests = {t};
  auto skipped =
      Interpret({0}, false, tests,
                WithOutput(ExitState::Exited(0),
                           "[ RUN      ] MySuite.Skips\n[  SKIPPED ] MySuite.Skips (0 ms)\n"))
          .decided[0];
  EXPECT_EQ(skipped.state, TestStatus::kSkipped);
  EXPECT_EQ(skipped.reason, "its output matches SKIP_REGULAR_EXPRESSION '\\[  SKIPPED \\]'");
  EXPECT_EQ(Interpret({0}, false, tests, WithOutput(ExitState::Exited(0), "[       OK ] x\n"))
                .decided[0]
                .state,
            TestStatus::kPassed);
  EXPECT_EQ(Interpret({0}, false, tests, WithOutput(ExitState::Exited(1), "", "[  SKIPPED ] y"))
                .decided[0]
                .state,
            TestStatus::kSkipped)
      << "stderr counts too, and a skip wins over the exit code";
  EXPECT_EQ(
      Interpret({0}, false, tests, WithOutput(ExitState::Signaled(11, false), "[  SKIPPED ] z"))
          .decided[0]
          .state,
      TestStatus::kFailed)
      << "a crash is never a skip";
}

TEST(Interpret, CtestPassAndFailRegularExpressions) {
  TestSpec t = Plain("t");
  t.EditSettings().output_rules.pass = {"all (good|fine)", "ok$"};
  t.EditSettings().output_rules.fail = {"ERROR"};
  std::vector<TestSpec> tests = {t};
  auto verdict = [&](int code, const std::string& out) {
    return Interpret({0}, false, tests, WithOutput(ExitState::Exited(code), out)).decided[0];
  };
  EXPECT_EQ(verdict(3, "it is all fine\n").state, TestStatus::kPassed)
      << "with a PASS_ expression the exit code does not count";
  EXPECT_EQ(verdict(0, "ends ok").state, TestStatus::kPassed);
  auto missing = verdict(0, "nothing to see\n");
  EXPECT_EQ(missing.state, TestStatus::kFailed);
  EXPECT_EQ(missing.reason,
            "its output matches no PASS_REGULAR_EXPRESSION ('all (good|fine)', 'ok$')");
  auto error = verdict(0, "all good\nERROR: disk\n");
  EXPECT_EQ(error.state, TestStatus::kFailed);
  EXPECT_EQ(error.reason, "its output matches FAIL_REGULAR_EXPRESSION 'ERROR'");

  TestSpec inverted = t;
  inverted.will_fail = true;
  tests = {inverted};
  EXPECT_EQ(verdict(0, "ERROR").state, TestStatus::kPassed) << "WILL_FAIL turns it around";
  auto unexpected = verdict(0, "all good");
  EXPECT_EQ(unexpected.state, TestStatus::kFailed);
  EXPECT_NE(unexpected.reason.find("WILL_FAIL"), std::string::npos);
}

TEST(Interpret, GtestCasesComeFromTheJsonReport) {
  std::vector<TestSpec> tests = {Case("A.pass"), Case("A.fail"), Case("B.skip")};
  auto v = Interpret({0, 1, 2}, true, tests,
                     Result(ExitState::Exited(1),
                            Json({{"A.pass", ""}, {"A.fail", "expected 4"}, {"B.skip", "SKIP"}})));
  ASSERT_EQ(v.decided.size(), 3u);
  EXPECT_TRUE(v.rerun.empty());
  EXPECT_EQ(v.decided[0].state, TestStatus::kPassed);
  EXPECT_EQ(v.decided[0].duration, Millis(12));
  EXPECT_EQ(v.decided[1].state, TestStatus::kFailed);
  EXPECT_NE(v.decided[1].message.find("expected 4"), std::string::npos);
  EXPECT_EQ(v.decided[2].state, TestStatus::kSkipped);
}

TEST(Interpret, ACrashedBatchRerunsEveryCaseItCouldNotVouchFor) {
  std::vector<TestSpec> tests = {Case("A.a"), Case("A.b"), Case("A.c")};
  auto v = Interpret(
      {0, 1, 2}, true, tests,
      Result(ExitState::Signaled(11, true), {}, "the test did not write its report file"));
  EXPECT_TRUE(v.decided.empty());
  EXPECT_EQ(v.rerun, (std::vector<std::size_t>{0, 1, 2}));
}

TEST(Interpret, AnAbnormalEndAfterReportingDistrustsOnlyThePasses) {
  std::vector<TestSpec> tests = {Case("A.a"), Case("A.b")};
  auto v = Interpret({0, 1}, true, tests,
                     Result(ExitState::Signaled(6, false), Json({{"A.a", ""}, {"A.b", "boom"}})));
  ASSERT_EQ(v.decided.size(), 1u);
  EXPECT_EQ(v.decided[0].test, 1u);
  EXPECT_EQ(v.decided[0].state, TestStatus::kFailed);
  EXPECT_EQ(v.rerun, (std::vector<std::size_t>{0}));
}

TEST(Interpret, ASingleCaseWithoutAReportFailsWithTheReason) {
  std::vector<TestSpec> tests = {Case("A.a")};
  auto crashed = Interpret({0}, false, tests, Result(ExitState::Signaled(11, false), {}, "x"));
  ASSERT_EQ(crashed.decided.size(), 1u);
  EXPECT_EQ(crashed.decided[0].state, TestStatus::kFailed);
  EXPECT_EQ(crashed.decided[0].reason, "SIGSEGV");

  auto deleted =
      Interpret({0}, false, tests,
                Result(ExitState::Exited(0), {}, "the test did not write its report file"));
  EXPECT_EQ(deleted.decided[0].state, TestStatus::kFailed);
  EXPECT_EQ(deleted.decided[0].reason,
            "gtest's JSON report: the test did not write its report file");

  auto corrupt = Interpret({0}, false, tests, Result(ExitState::Exited(0), "{not json"));
  EXPECT_EQ(corrupt.decided[0].state, TestStatus::kFailed);
  EXPECT_NE(corrupt.decided[0].reason.find("unreadable"), std::string::npos);

  auto missing = Interpret({0}, false, tests, Result(ExitState::Exited(0), Json({{"Z.z", ""}})));
  EXPECT_EQ(missing.decided[0].reason, "the case is missing from gtest's JSON report");
}

TEST(Interpret, CancelledJobsCancelEveryCase) {
  std::vector<TestSpec> tests = {Case("A.a"), Case("A.b")};
  auto v = Interpret({0, 1}, true, tests, Result(ExitState::Cancelled("stop")));
  ASSERT_EQ(v.decided.size(), 2u);
  EXPECT_EQ(v.decided[1].state, TestStatus::kCancelled);
  EXPECT_TRUE(v.rerun.empty());
  // A cancelled test ran until it was stopped: that is its duration, not 0ms.
  EXPECT_EQ(v.decided[0].duration, Millis(40));
  EXPECT_EQ(v.decided[1].duration, Millis(40));
}

}  // namespace
}  // namespace testfarm::coordinator
