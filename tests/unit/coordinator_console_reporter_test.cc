#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

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

TestReport Finished(const std::string& name, JobState state, ExitState exit, uint64_t ms = 5) {
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

std::string LastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of('\n');
  std::size_t start = text.rfind('\n', end);
  return text.substr(start + 1, end - start);
}

TEST(ConsoleReporter, PlainLinesAndExactSummary) {
  Captured out;
  ConsoleReporter reporter(out.file(), ConsoleOptions{});
  reporter.OnRunStart(3);
  reporter.OnTestFinished(Finished("a", JobState::kPassed, ExitState::Exited(0), 12), 1);
  TestReport crash = Finished("b", JobState::kFailed, ExitState::Signaled(11, true), 1500);
  crash.result->stdout_text = "line one\nline two\n";
  reporter.OnTestFinished(crash, 0);
  RunSummary summary;
  summary.passed = 1;
  summary.failed = 1;
  summary.reports.push_back(Finished("a", JobState::kPassed, ExitState::Exited(0), 12));
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
  never.state = JobState::kNotRun;
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
  TestReport fail = Finished("t", JobState::kFailed, ExitState::Exited(1));
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
  reporter.OnTestFinished(Finished("a", JobState::kPassed, ExitState::Exited(0)), 1);
  std::string text = out.text();
  EXPECT_NE(text.find("[1/2] 1 running, 0 failed"), std::string::npos) << text;
  EXPECT_NE(text.find("\033[32mPASS\033[0m"), std::string::npos) << text;
}

TEST(ConsoleReporter, StatusWordsNameEveryOutcome) {
  EXPECT_STREQ(StatusWord(Finished("x", JobState::kFailed, ExitState::Exited(2))), "FAIL");
  EXPECT_STREQ(StatusWord(Finished("x", JobState::kFailed, ExitState::TimedOut("SIGTERM"))),
               "TIMEOUT");
  EXPECT_STREQ(StatusWord(Finished("x", JobState::kFailed, ExitState::SpawnFailed(2, "nope"))),
               "ERROR");
  EXPECT_STREQ(StatusWord(Finished("x", JobState::kFailed, ExitState::Leaked(0, "held"))), "LEAK");
  EXPECT_STREQ(StatusWord(Finished("x", JobState::kCancelled, ExitState::Cancelled("stop"))),
               "CANCEL");
  TestReport lost;
  lost.state = JobState::kExpired;
  lost.reason = "no result";
  EXPECT_STREQ(StatusWord(lost), "LOST");
  EXPECT_EQ(StatusReason(lost), "no result");
}

}  // namespace
}  // namespace testfarm::coordinator
