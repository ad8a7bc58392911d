#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "coordinator/console_reporter.h"

namespace testfarm::coordinator {
namespace {

// Captures what the reporter writes through an in-memory FILE*.
class Captured {
 public:
  Captured() : file_(open_memstream(&data_, &size_)) {}
  ~Captured() {
    std::fclose(file_);
    std::free(data_);
  }
  std::FILE* file() { return file_; }
  std::string text() {
    std::fflush(file_);
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::FILE* file_;
};

TestReport Finished(const std::string& name, TestStatus state, ExitState exit, uint64_t ms = 5) {
  TestReport report;
  report.name = name;
  report.state = state;
  protocol::JobResult result;
  result.state = exit;
  result.duration_ms = ms;
  report.duration = Millis(static_cast<long long>(ms));
  report.result = result;
  return report;
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (auto p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

std::string LastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of('\n');
  std::size_t start = text.rfind('\n', end);
  return text.substr(start + 1, end - start);
}

TEST(ConsoleReporter, PlainLinesAndExactSummary) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  reporter.OnRunStart(3);
  reporter.OnTestFinished(Finished("a", TestStatus::kPassed, ExitState::Exited(0), 12), 1);
  TestReport crash = Finished("b", TestStatus::kFailed, ExitState::Signaled(11, true), 1500);
  crash.result->stdout_text = "line one\nline two\n";
  reporter.OnTestFinished(crash, 0);
  RunSummary summary;
  summary.passed = 1;
  summary.failed = 1;
  summary.reports.push_back(Finished("a", TestStatus::kPassed, ExitState::Exited(0), 12));
  summary.reports.push_back(crash);
  summary.wall = Millis(1600);
  reporter.OnRunEnd(summary);
  std::string text = out.text();
  EXPECT_NE(text.find("PASS        12ms  a\n"), std::string::npos) << text;
  EXPECT_NE(text.find("CRASH      1.50s  b  (SIGSEGV (core dumped))\n"), std::string::npos) << text;
  EXPECT_NE(text.find("    --- stdout ---\n    line one\n    line two\n"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("stderr"), std::string::npos) << "an empty stream is not shown";
  EXPECT_EQ(text.find('\033'), std::string::npos) << "no escapes without a terminal";
  EXPECT_EQ(LastLine(text), "1 passed, 1 failed");
}

TEST(ConsoleReporter, ALargeRunTellsFailuresAndItsProgressNotEveryPass) {
  ConsoleOptions options;
  options.every_line_up_to = 10;
  Captured out;
  ConsoleReporter reporter(out.file(), options);
  reporter.OnRunStart(40);
  for (int i = 0; i < 40; ++i) {
    const bool fails = i == 17;
    reporter.OnTestFinished(
        Finished("t" + std::to_string(i), fails ? TestStatus::kFailed : TestStatus::kPassed,
                 ExitState::Exited(fails ? 1 : 0)),
        0);
  }
  std::string text = out.text();
  EXPECT_EQ(Count(text, "PASS"), 0) << text;
  EXPECT_EQ(Count(text, "FAIL "), 1) << text;
  EXPECT_NE(text.find("FAIL         5ms  t17  (exit 1)\n"), std::string::npos) << text;
  EXPECT_NE(text.find("-v: a line for every test"), std::string::npos) << text;
  EXPECT_NE(text.find("testfarm: 4 of 40 finished (10%), 0 failed\n"), std::string::npos) << text;
  EXPECT_NE(text.find("testfarm: 20 of 40 finished (50%), 1 failed\n"), std::string::npos) << text;
  EXPECT_EQ(Count(text, " finished ("), 9) << "every tenth, not the end: the summary says it";

  Captured stopped;
  ConsoleReporter stopping(stopped.file(), options);
  stopping.OnRunStart(40);
  TestReport never = Finished("t1", TestStatus::kNotRun, ExitState::Exited(0));
  never.result.reset();
  never.reason = "the run was stopped";
  stopping.OnTestFinished(never, 0);
  TestReport cut = Finished("t2", TestStatus::kCancelled, ExitState::Cancelled("stopped"));
  stopping.OnTestFinished(cut, 0);
  stopping.OnTestFinished(Finished("t3", TestStatus::kSkipped, ExitState::Exited(0)), 0);
  EXPECT_NE(stopped.text().find("  t1  ("), std::string::npos) << stopped.text();
  EXPECT_NE(stopped.text().find("  t2  ("), std::string::npos) << "a stopped run's tests are told";
  EXPECT_EQ(stopped.text().find("  t3"), std::string::npos) << "a skip is not";

  options.verbosity = Verbosity::kVerbose;
  Captured every;
  ConsoleReporter verbose(every.file(), options);
  verbose.OnRunStart(40);
  for (int i = 0; i < 40; ++i) {
    verbose.OnTestFinished(
        Finished("t" + std::to_string(i), TestStatus::kPassed, ExitState::Exited(0)), 0);
  }
  EXPECT_EQ(Count(every.text(), "PASS"), 40);
}

TEST(ConsoleReporter, CancelledAndNotRunAreCountedAsSuchNeverAsSkipped) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  RunSummary summary;
  summary.passed = 2;
  summary.failed = 1;
  summary.cancelled = 1;
  summary.not_run = 3;
  summary.stop_reason = "fail-fast";
  reporter.OnRunEnd(summary);
  std::string text = out.text();
  EXPECT_EQ(LastLine(text), "2 passed, 1 failed, 1 cancelled, 3 not run");
  EXPECT_NE(text.find("Stopped early: fail-fast\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n7 tests in "), std::string::npos) << text;
}

TEST(ConsoleReporter, SkippedAppearOnlyWhenThereAreAnyAndOneTestIsOneTest) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  RunSummary summary;
  summary.skipped_tests = 1;
  reporter.OnRunEnd(summary);
  std::string text = out.text();
  EXPECT_EQ(LastLine(text), "0 passed, 0 failed, 1 skipped");
  EXPECT_NE(text.find("\n1 test in "), std::string::npos) << text;
  EXPECT_EQ(text.find("Stopped early"), std::string::npos) << text;
}

TEST(ConsoleReporter, ATestThatNeverStartedIsListedAsNotRun) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  TestReport never;
  never.name = "t";
  never.state = TestStatus::kNotRun;
  never.reason = "the run stopped: fail-fast";
  reporter.OnTestFinished(never, 0);
  EXPECT_NE(out.text().find("NOTRUN       0ms  t  (the run stopped: fail-fast)\n"),
            std::string::npos)
      << out.text();
}

TEST(ConsoleReporter, LongOutputShowsTheLastLinesAndSaysSo) {
  Captured out;
  ConsoleOptions options;
  options.output_lines = 3;
  ConsoleReporter reporter(out.file(), options);
  TestReport fail = Finished("t", TestStatus::kFailed, ExitState::Exited(1));
  fail.result->stderr_text = "1\n2\n3\n4\n5\n";
  reporter.OnTestFinished(fail, 0);
  std::string text = out.text();
  EXPECT_NE(text.find("--- stderr (last 3 lines; 2 earlier not shown) ---\n    3\n    4\n    5\n"),
            std::string::npos)
      << text;
}

TEST(ConsoleReporter, ProgressAndColourOnlyWhenAsked) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{/*progress=*/true, /*color=*/true, 200});
  reporter.OnRunStart(2);
  reporter.OnTestFinished(Finished("a", TestStatus::kPassed, ExitState::Exited(0)), 1);
  std::string text = out.text();
  EXPECT_NE(text.find("[1/2] 1 running, 0 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("\033[32mPASS\033[0m"), std::string::npos) << text;
}

RunSummary SummaryOf(const std::vector<TestReport>& reports) {
  RunSummary summary;
  for (const TestReport& r : reports) {
    if (r.state == TestStatus::kPassed) ++summary.passed;
    if (r.state == TestStatus::kFailed) ++summary.failed;
    summary.reports.push_back(r);
  }
  return summary;
}

// A passing and a failing test, both with output, through a reporter with `options`.
std::string RunTwo(ConsoleOptions options) {
  Captured out;
  ConsoleReporter reporter(out.file(), options);
  reporter.OnRunStart(2);
  reporter.OnWorkerJoined("local", 2);
  TestReport pass = Finished("good", TestStatus::kPassed, ExitState::Exited(0));
  pass.result->stdout_text = "good says hi\n";
  pass.worker = "local";
  pass.slot = 1;
  TestReport fail = Finished("bad", TestStatus::kFailed, ExitState::Exited(1));
  fail.result->stderr_text = "bad went wrong\n";
  fail.worker = "local";
  reporter.OnTestStarted("good", "local");
  reporter.OnTestFinished(pass, 1);
  reporter.OnTestFinished(fail, 0);
  reporter.OnRunEnd(SummaryOf({pass, fail}));
  return out.text();
}

TEST(ConsoleReporter, DefaultShowsFailureOutputImmediatelyAndNoPassingOutput) {
  std::string text = RunTwo(ConsoleOptions{});
  EXPECT_NE(text.find("FAIL         5ms  bad  (exit 1)\n    --- stderr ---\n    bad went wrong\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("good says hi"), std::string::npos) << text;
  EXPECT_EQ(text.find("START"), std::string::npos) << text;
  EXPECT_EQ(text.find("[worker"), std::string::npos) << text;
}

TEST(ConsoleReporter, FinalOutputComesAfterAllTestsBeforeTheSummary) {
  ConsoleOptions options;
  options.failure_output = OutputWhen::kFinal;
  options.success_output = OutputWhen::kFinal;
  std::string text = RunTwo(options);
  std::size_t fail_line = text.find("FAIL         5ms  bad  (exit 1)\n");
  std::size_t output = text.find("    bad went wrong\n");
  std::size_t failed_list = text.find("Failed tests:");
  ASSERT_NE(output, std::string::npos) << text;
  EXPECT_LT(fail_line, output);
  EXPECT_LT(output, failed_list) << text;
  // The immediate line has no output under it; the final block repeats the line with it.
  const std::string line = "FAIL         5ms  bad  (exit 1)\n";
  EXPECT_EQ(Count(text, line), 2) << text;
  EXPECT_NE(text.compare(fail_line + line.size(), 4, "    "), 0) << text;
  EXPECT_NE(text.find("PASS         5ms  good\n    --- stdout ---\n    good says hi\n"),
            std::string::npos)
      << text;
  EXPECT_LT(text.find("good says hi"), failed_list);
  EXPECT_EQ(Count(text, "bad went wrong"), 1) << text;
}

TEST(ConsoleReporter, ImmediateFinalShowsOutputTwiceAndNeverNone) {
  ConsoleOptions both;
  both.failure_output = OutputWhen::kImmediateFinal;
  EXPECT_EQ(Count(RunTwo(both), "bad went wrong"), 2);
  ConsoleOptions never;
  never.failure_output = OutputWhen::kNever;
  std::string text = RunTwo(never);
  EXPECT_EQ(text.find("bad went wrong"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL         5ms  bad  (exit 1)\n"), std::string::npos) << text;
}

TEST(ConsoleReporter, SuccessOutputImmediateShowsItUnderThePassLine) {
  ConsoleOptions options;
  options.success_output = OutputWhen::kImmediate;
  std::string text = RunTwo(options);
  EXPECT_NE(text.find("PASS         5ms  good\n    --- stdout ---\n    good says hi\n"),
            std::string::npos)
      << text;
}

TEST(ConsoleReporter, QuietShowsOnlyFailuresAndTheSummary) {
  ConsoleOptions options;
  options.verbosity = Verbosity::kQuiet;
  options.progress = true;  // quiet wins over the terminal's progress line
  std::string text = RunTwo(options);
  EXPECT_EQ(text.find("good"), std::string::npos) << text;
  EXPECT_EQ(text.find("joined"), std::string::npos) << text;
  EXPECT_EQ(text.find("testfarm: 2 tests"), std::string::npos) << text;
  EXPECT_EQ(text.find("running"), std::string::npos) << "no progress line: " << text;
  EXPECT_NE(text.find("FAIL         5ms  bad  (exit 1)\n    --- stderr ---\n"), std::string::npos)
      << text;
  EXPECT_EQ(LastLine(text), "1 passed, 1 failed");
}

TEST(ConsoleReporter, VerboseSaysWhenEachTestStartsAndWhereItRan) {
  ConsoleOptions options;
  options.verbosity = Verbosity::kVerbose;
  std::string text = RunTwo(options);
  EXPECT_NE(text.find("START             good  [worker local]\n"), std::string::npos) << text;
  EXPECT_NE(text.find("PASS         5ms  good  [worker local, slot 1]\n"), std::string::npos)
      << text;
  EXPECT_LT(text.find("START"), text.find("PASS")) << text;
}

TEST(ConsoleReporter, ColoursForcedOrNever) {
  ConsoleOptions forced;
  forced.color = true;
  std::string text = RunTwo(forced);
  EXPECT_NE(text.find("\033[32mPASS\033[0m"), std::string::npos) << text;
  EXPECT_NE(text.find("\033[31;1mFAIL\033[0m"), std::string::npos) << text;
  EXPECT_EQ(text.find("\r\033[K"), std::string::npos) << "colour alone draws no progress line";
  EXPECT_EQ(RunTwo(ConsoleOptions{}).find('\033'), std::string::npos);
}

TEST(ConsoleReporter, SlowLineIsNotAResultLine) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  reporter.OnTestSlow("sleepy", Millis(1500));
  EXPECT_EQ(out.text(), "SLOW      >1.50s  sleepy\n");
  Captured quiet_out;
  ConsoleOptions quiet;
  quiet.verbosity = Verbosity::kQuiet;
  ConsoleReporter quiet_reporter(quiet_out.file(), quiet);
  quiet_reporter.OnTestSlow("sleepy", Millis(1500));
  EXPECT_EQ(quiet_out.text(), "");
}

TEST(ConsoleReporter, ProgressLineNamesTheLongestRunningTestWithinTheWidth) {
  Captured out;
  ConsoleOptions options;
  options.progress = true;
  options.width = 60;
  ConsoleReporter reporter(out.file(), options);
  reporter.OnRunStart(3);
  reporter.OnRunning(2, "slow_one", Millis(4200));
  std::string text = out.text();
  EXPECT_NE(text.find("[0/3] 2 running, 0 failed; longest 4.20s: slow_one"), std::string::npos)
      << text;
  reporter.OnRunning(2, std::string(100, 'x'), Millis(5000));
  text = out.text();
  std::size_t last = text.rfind("\r\033[K");
  ASSERT_NE(last, std::string::npos) << text;
  std::string drawn = text.substr(last + 4);
  EXPECT_EQ(drawn.size(), 59u) << drawn;
  EXPECT_EQ(drawn.substr(drawn.size() - 3), "...") << drawn;
}

TEST(ConsoleReporter, ControlCharactersFromTestsAreShownEscaped) {
  using namespace std::string_literals;
  Captured out;
  ConsoleOptions options;
  options.verbosity = Verbosity::kVerbose;
  ConsoleReporter reporter(out.file(), options);
  reporter.OnRunStart(1);
  reporter.OnWorkerJoined("evil\033]0;title\007", 1);
  std::string name = "clear\033[2Jscreen\0tail"s;
  reporter.OnTestStarted(name, "w");
  reporter.OnTestSlow(name, Millis(10));
  TestReport fail = Finished(name, TestStatus::kFailed, ExitState::Exited(1));
  fail.result->stdout_text = "line\0with nul\r\nnext \033[31mred\n"s;
  fail.message = ""s;
  reporter.OnTestFinished(fail, 0);
  RunSummary summary = SummaryOf({fail});
  summary.stop_reason = "fail-fast";
  reporter.OnRunEnd(summary);
  std::string text = out.text();
  EXPECT_EQ(text.find('\033'), std::string::npos) << text;
  EXPECT_EQ(text.find('\0'), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << text;
  EXPECT_EQ(text.find('\007'), std::string::npos) << text;
  EXPECT_NE(text.find("worker evil\\x1b]0;title\\x07 joined"), std::string::npos) << text;
  EXPECT_NE(text.find("FAIL         5ms  clear\\x1b[2Jscreen\\x00tail  (exit 1)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("    line\\x00with nul\\x0d\n    next \\x1b[31mred\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("  FAIL     clear\\x1b[2Jscreen\\x00tail  (exit 1)\n"), std::string::npos)
      << "the Failed tests list: " << text;
  EXPECT_EQ(Count(text, "clear\\x1b[2Jscreen\\x00tail"), 4) << "START, SLOW, result, list";
}

TEST(ConsoleReporter, GtestFailureMessageIsEscapedToo) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  TestReport fail = Finished("bin::A.b", TestStatus::kFailed, ExitState::Exited(1));
  fail.message = "Expected: \"\033[0m\"\n";
  reporter.OnTestFinished(fail, 0);
  EXPECT_NE(out.text().find("    --- failure ---\n    Expected: \"\\x1b[0m\"\n"), std::string::npos)
      << out.text();
}

TEST(ConsoleReporter, StatusWordsNameEveryOutcome) {
  EXPECT_STREQ(StatusWord(Finished("x", TestStatus::kFailed, ExitState::Exited(2))), "FAIL");
  EXPECT_STREQ(StatusWord(Finished("x", TestStatus::kFailed, ExitState::TimedOut("SIGTERM"))),
               "TIMEOUT");
  EXPECT_STREQ(StatusWord(Finished("x", TestStatus::kFailed, ExitState::SpawnFailed(2, "nope"))),
               "ERROR");
  EXPECT_STREQ(StatusWord(Finished("x", TestStatus::kFailed, ExitState::Leaked(0, "held"))),
               "LEAK");
  EXPECT_STREQ(StatusWord(Finished("x", TestStatus::kCancelled, ExitState::Cancelled("stop"))),
               "CANCEL");
  TestReport lost;
  lost.state = TestStatus::kExpired;
  lost.reason = "no result";
  EXPECT_STREQ(StatusWord(lost), "LOST");
  EXPECT_EQ(StatusReason(lost), "no result");
}

}  // namespace
}  // namespace testfarm::coordinator
