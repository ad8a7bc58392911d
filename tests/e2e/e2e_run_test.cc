// End to end: `testfarm run` on the fixture programs, checking exit codes, per-test lines and the
// summary line exactly as a user (or CI log parser) sees them.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;

TEST(E2E, AllPassingExitsZeroWithSummary) {
  auto r = Testfarm(
      {"run", Fixture("tf_pass"), Fixture("tf_stdin"), Fixture("tf_env"), Fixture("tf_fds")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "4 passed, 0 failed") << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_pass")).rfind("PASS", 0), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\033["), std::string::npos) << "no colour or progress when not a terminal";
}

TEST(E2E, EveryMisbehaviourIsClassifiedExactly) {
  TempDir dir;
  fs::path not_executable = dir.path() / "not_executable";
  std::ofstream(not_executable) << "#!/bin/sh\nexit 0\n";
  fs::permissions(not_executable, fs::perms::owner_read | fs::perms::owner_write);

  auto r = Testfarm({"run", "-j", "4", "--timeout", "2s", "--kill-grace", "300ms",
                     Fixture("tf_pass"), Fixture("tf_fail"), Fixture("tf_segv"),
                     Fixture("tf_abort"), Fixture("tf_hang"), Fixture("tf_ignore_term"),
                     Fixture("tf_flood"), Fixture("tf_orphan"), not_executable.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "2 passed, 7 failed") << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_pass")).find("PASS"), std::string::npos);
  EXPECT_NE(LineFor(r, Fixture("tf_flood")).find("PASS"), std::string::npos);
  EXPECT_NE(LineFor(r, Fixture("tf_fail")).find("(exit 1)"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_segv")).find("CRASH"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_segv")).find("SIGSEGV"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_abort")).find("SIGABRT"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_hang")).find("TIMEOUT"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_ignore_term")).find("TIMEOUT"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_ignore_term")).find("SIGKILL"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_orphan")).find("LEAK"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, not_executable.string()).find("ERROR"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, not_executable.string()).find("Permission denied"), std::string::npos)
      << r.out;
  // A failed test's output is shown under it.
  EXPECT_NE(r.out.find("tf_fail: assertion failed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tf_segv: about to crash"), std::string::npos) << r.out;
}

class E2EJobs : public ::testing::TestWithParam<int> {};

TEST_P(E2EJobs, ManyPassingTestsAtAnySlotCount) {
  std::vector<std::string> args = {"run", "-j", std::to_string(GetParam())};
  for (int i = 0; i < 12; ++i) args.push_back(Fixture(i % 2 ? "tf_pass" : "tf_env"));
  auto r = Testfarm(args);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "12 passed, 0 failed") << r.out;
  EXPECT_NE(r.out.find("joined with " + std::to_string(GetParam()) + " slot"), std::string::npos)
      << r.out;
}

INSTANTIATE_TEST_SUITE_P(Slots, E2EJobs, ::testing::Values(1, 2, 4, 8));

TEST(E2E, FailFastCancelsTheRest) {
  // Everything but the failing test hangs, so nothing else can finish on its own: whether it was
  // running, queued at the worker or never sent, it is cancelled or not run.
  auto r = Testfarm({"run", "-j", "2", "--fail-fast", "--kill-grace", "200ms", Fixture("tf_fail"),
                     Fixture("tf_hang"), Fixture("tf_hang"), Fixture("tf_ignore_term")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  auto counts = SummaryCounts(r.LastLine());
  EXPECT_EQ(counts["failed"], 1) << r.out;
  EXPECT_EQ(counts["passed"] + counts["skipped"], 0) << r.out;
  EXPECT_EQ(counts["cancelled"] + counts["not run"], 3) << r.out;
  EXPECT_NE(r.out.find("Stopped early: fail-fast"), std::string::npos) << r.out;
}

TEST(E2E, MaxFailStopsAfterN) {
  // Tests after the second failure hang, so whatever the worker had already started or queued
  // when the limit was reached can only end by being cancelled: the counts are exact.
  std::vector<std::string> args = {"run",
                                   "-j",
                                   "1",
                                   "--max-fail",
                                   "2",
                                   "--kill-grace",
                                   "200ms",
                                   Fixture("tf_fail"),
                                   Fixture("tf_fail")};
  for (int i = 0; i < 3; ++i) args.push_back(Fixture("tf_hang"));
  auto r = Testfarm(args);
  EXPECT_EQ(r.exit_code, 1);
  auto counts = SummaryCounts(r.LastLine());
  EXPECT_EQ(counts["failed"], 2) << r.out;
  EXPECT_EQ(counts["passed"] + counts["skipped"], 0) << r.out;
  EXPECT_EQ(counts["cancelled"] + counts["not run"], 3) << r.out;
}

TEST(E2E, InterruptStopsRunningTestsAndExits130) {
  ChildOptions options;
  options.signal_after_text = "joined with";
  options.signal_on_text = SIGINT;
  auto r = Testfarm({"run", "-j", "2", "--kill-grace", "300ms", Fixture("tf_hang"),
                     Fixture("tf_ignore_term"), Fixture("tf_hang")},
                    options);
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  auto counts = SummaryCounts(r.LastLine());
  EXPECT_EQ(counts["passed"] + counts["failed"] + counts["skipped"], 0) << r.out;
  EXPECT_EQ(counts["cancelled"] + counts["not run"], 3) << r.out;
  EXPECT_NE(r.out.find("Stopped early: interrupted"), std::string::npos) << r.out;
}

TEST(E2E, ATestThatCannotStartFailsAtOnceEvenWithoutTimeout) {
  TempDir dir;
  fs::path not_executable = dir.path() / "not_executable";
  std::ofstream(not_executable) << "data\n";
  fs::permissions(not_executable, fs::perms::owner_read);
  ChildOptions bounded;
  bounded.deadline = std::chrono::milliseconds(20000);
  auto r = Testfarm({"run", "--timeout", "0", not_executable.string()}, bounded);
  EXPECT_FALSE(r.timed_out) << "the worker sat on a result it already had";
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(LineFor(r, not_executable.string()).find("ERROR"), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), "0 passed, 1 failed");
}

TEST(E2E, KillGraceZeroMeansSigkillRightAfterSigterm) {
  auto r = Testfarm({"run", "--timeout", "300ms", "--kill-grace", "0", Fixture("tf_ignore_term")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(LineFor(r, Fixture("tf_ignore_term")).find("SIGKILL after 0ms grace"),
            std::string::npos)
      << r.out;
}

TEST(E2E, InheritedIgnoredSigchldDoesNotHideExitStatuses) {
  // A parent that ignores SIGCHLD passes that on through exec; the kernel would then reap the
  // tests before testfarm could read how they ended.
  // (perl-base is part of every Debian system; dash will not ignore SIGCHLD.)
  std::vector<std::string> args = {"/usr/bin/perl",
                                   "-e",
                                   "$SIG{CHLD} = 'IGNORE'; exec @ARGV",
                                   TESTFARM_BINARY,
                                   "run",
                                   Fixture("tf_fail"),
                                   Fixture("tf_segv"),
                                   Fixture("tf_pass")};
  auto r = RunChild(args);
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(LineFor(r, Fixture("tf_segv")).find("SIGSEGV"), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 2 failed") << r.out;
}

TEST(E2E, HangupStopsTheRunLikeInterrupt) {
  ChildOptions options;
  options.signal_after_text = "joined with";
  options.signal_on_text = SIGHUP;
  auto r = Testfarm({"run", "--kill-grace", "200ms", Fixture("tf_hang")}, options);
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 1 cancelled") << r.out;
}

TEST(E2E, InterruptBeforeAnyWorkerJoinedStillEnds) {
  ChildOptions options;
  options.deadline = std::chrono::milliseconds(20000);
  options.signal_after_text = "testfarm: ";  // the first line, printed before the worker joins
  options.signal_on_text = SIGINT;
  auto r = Testfarm({"run", Fixture("tf_hang"), Fixture("tf_hang")}, options);
  EXPECT_FALSE(r.timed_out) << r.out << r.err;
  EXPECT_EQ(r.exit_code, 130) << r.out << r.err;
  auto counts = SummaryCounts(r.LastLine());
  EXPECT_EQ(counts["cancelled"] + counts["not run"], 2) << r.out;
  EXPECT_EQ(counts["passed"] + counts["failed"] + counts["skipped"], 0) << r.out;
}

TEST(E2E, BadInputIsExit2WithOneClearLine) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  TempDir dir;
  std::vector<Case> cases = {
      {{"run", "/no/such/test"}, "cannot run '/no/such/test': No such file or directory"},
      {{"run", dir.path().string()}, "it is a directory"},
      {{"run", "--timeout", "soon", Fixture("tf_pass")}, "--timeout: not a duration: 'soon'"},
      {{"run", "-j", "0", Fixture("tf_pass")}, "--jobs"},
      {{"run", "--bogus", Fixture("tf_pass")}, "--bogus"},
      {{"run"}, "executables"},
      {{"frobnicate"}, "frobnicate"},
      {{"--log-level", "loud", "run", Fixture("tf_pass")}, "unknown level 'loud'"},
      {{"run", "--fail-fast", "--max-fail", "3", Fixture("tf_pass")}, "excludes"},
  };
  for (const Case& c : cases) {
    auto r = Testfarm(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.expected << "\n" << r.out << r.err;
    EXPECT_NE(r.err.find("testfarm: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << "wanted '" << c.expected << "' in:\n"
                                                         << r.err;
  }
}

TEST(E2E, HelpAndVersionTellTheTruth) {
  auto help = Testfarm({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("run"), std::string::npos);
  auto run_help = Testfarm({"run", "--help"});
  EXPECT_EQ(run_help.exit_code, 0);
  for (const char* flag : {"--jobs", "--timeout", "--kill-grace", "--fail-fast", "--max-fail"})
    EXPECT_NE(run_help.out.find(flag), std::string::npos) << flag;
  auto version = Testfarm({"--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("testfarm ", 0), 0u) << version.out;
}

}  // namespace
}  // namespace testfarm::test
