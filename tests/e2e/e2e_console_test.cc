// End to end: what `testfarm run` prints on the console and how the console options change it:
// --no-capture, --slow-timeout, --color, --quiet, --failure-output, and escaping of whatever a
// test's name or output holds.
#include <gtest/gtest.h>

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

ChildResult Testfarm(std::vector<std::string> args) {
  args.insert(args.begin(), TESTFARM_BINARY);
  return RunChild(args);
}

// An executable shell script at `path`.
std::string Script(const fs::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  fs::permissions(path, fs::perms::owner_all);
  return path.string();
}

TEST(E2EConsole, NoCaptureLetsOutputThroughOneTestAtATime) {
  auto r = Testfarm({"run", "--no-capture", "-j", "4", Fixture("tf_fail"), Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("joined with 1 slot\n"), std::string::npos) << r.out;
  // Straight through: on testfarm's own stdout and stderr, not indented under a block.
  std::size_t fail_output = r.out.find("\ntf_fail: expected 2, got 3\n");
  std::size_t fail_line = r.out.find(LineFor(r, Fixture("tf_fail")));
  std::size_t pass_output = r.out.find("\ntf_pass: all good\n");
  std::size_t pass_line = r.out.find(LineFor(r, Fixture("tf_pass")));
  ASSERT_NE(fail_output, std::string::npos) << r.out;
  ASSERT_NE(pass_output, std::string::npos) << r.out;
  EXPECT_LT(fail_output, fail_line) << r.out;
  EXPECT_LT(fail_line, pass_output) << "the next test starts after the line" << r.out;
  EXPECT_LT(pass_output, pass_line) << r.out;
  EXPECT_NE(r.err.find("tf_fail: assertion failed\n"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("--- stdout ---"), std::string::npos) << "nothing was captured" << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed") << r.out;
}

TEST(E2EConsole, NoCaptureRefusesRemoteWorkers) {
  auto r = Testfarm({"run", "--no-capture", "--listen", "tcp://127.0.0.1:*", Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_NE(r.err.find("--no-capture works only without --listen"), std::string::npos) << r.err;
}

TEST(E2EConsole, SlowTimeoutNamesATestStillRunning) {
  TempDir dir;
  std::string sleeper = Script(dir.path() / "sleeper", "exec " + Fixture("tf_sleep") + " 3000");
  auto r = Testfarm({"run", "-j", "2", "--slow-timeout", "100ms", sleeper, Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  std::size_t slow = r.out.find("SLOW ");
  ASSERT_NE(slow, std::string::npos) << r.out;
  std::string slow_line = r.out.substr(slow, r.out.find('\n', slow) - slow);
  // Said when the threshold passes (the loop wakes for it), not at the next heartbeat (1s).
  EXPECT_TRUE(std::regex_search(slow_line, std::regex("^SLOW +>[0-9]+ms  "))) << slow_line;
  EXPECT_NE(slow_line.find("  " + sleeper), std::string::npos) << slow_line;
  EXPECT_EQ(Count(r.out, "SLOW "), 1) << "once, and only for the slow test: " << r.out;
  EXPECT_LT(slow, r.out.find(LineFor(r, sleeper))) << r.out;
  EXPECT_NE(LineFor(r, sleeper).rfind("PASS", 0), std::string::npos) << r.out;
}

TEST(E2EConsole, ColorAlwaysPaintsEvenIntoAPipeButDrawsNoProgress) {
  auto r = Testfarm({"run", "--color", "always", Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("\033[32mPASS\033[0m"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\r\033[K"), std::string::npos) << r.out;
  auto never = Testfarm({"run", "--color", "never", Fixture("tf_pass")});
  EXPECT_EQ(never.out.find('\033'), std::string::npos) << never.out;
}

TEST(E2EConsole, FailureOutputFinalMovesOutputToTheEnd) {
  auto r = Testfarm(
      {"run", "-j", "1", "--failure-output", "final", Fixture("tf_fail"), Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::size_t output = r.out.find("    tf_fail: expected 2, got 3\n");
  ASSERT_NE(output, std::string::npos) << r.out;
  EXPECT_GT(output, r.out.find(LineFor(r, Fixture("tf_pass")))) << "after every test" << r.out;
  EXPECT_LT(output, r.out.find("Failed tests:")) << r.out;
  EXPECT_EQ(Count(r.out, "tf_fail: expected 2, got 3"), 1) << r.out;
}

TEST(E2EConsole, QuietShowsFailuresAndTheSummaryOnly) {
  auto r = Testfarm({"run", "-q", Fixture("tf_pass"), Fixture("tf_fail")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.find("PASS"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("joined"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_fail")).rfind("FAIL", 0), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    tf_fail: assertion failed\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed") << r.out;
}

TEST(E2EConsole, ControlCharactersInNamesAndOutputAreShownEscaped) {
  TempDir dir;
  std::string evil = Script(dir.path() / "clear\033[2Jscreen",
                            "printf 'red \\033[31m and nul \\000 here\\n'; exit 3");
  auto r = Testfarm({"run", evil});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.out.find('\033'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\0'), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("clear\\x1b[2Jscreen  (exit 3)\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    red \\x1b[31m and nul \\x00 here\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace testfarm::test
