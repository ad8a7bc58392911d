// End to end for CTest imports: a real CMake project registers tests with add_test and
// set_tests_properties, and testfarm runs them as ctest defines them — a test ctest cannot run
// fails with why, fixtures run their setup before and cleanup after their users (on one
// worker), DEPENDS orders, RESOURCE_LOCK excludes and PROCESSORS holds slots.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;

const char* const kCmake = "/usr/bin/cmake";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// Writes `cmake_lists` (after the usual preamble) to DIR/src and configures it into DIR/build.
// Returns the build directory, or an empty path after a failed expectation.
fs::path Configure(const fs::path& dir, const std::string& cmake_lists) {
  fs::path src = dir / "src";
  fs::create_directories(src);
  std::ofstream(src / "CMakeLists.txt")
      << "cmake_minimum_required(VERSION 3.20)\nproject(p NONE)\nenable_testing()\n"
      << cmake_lists;
  fs::path build = dir / "build";
  auto configure = RunChild({kCmake, "-S", src.string(), "-B", build.string()});
  EXPECT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  return configure.exit_code == 0 ? build : fs::path();
}

TEST(E2ECtest, AProjectWhoseListingIsLargerThanTheOutputCapIsImportedWhole) {
  // 4000 tests make ctest's JSON listing several MB, beyond the 1 MiB kept of a test's output.
  if (!fs::exists(kCmake)) GTEST_SKIP() << "cmake is not installed";
  TempDir dir;
  fs::path build = Configure(dir.path(),
                             "foreach(i RANGE 1 4000)\n"
                             "  add_test(NAME t${i} COMMAND " +
                                 Fixture("tf_pass") +
                                 " argument-to-make-the-listing-longer-${i})\n"
                                 "  set_tests_properties(t${i} PROPERTIES LABELS \"a;b\" "
                                 "ENVIRONMENT \"X=${i}\")\n"
                                 "endforeach()\n");
  ASSERT_FALSE(build.empty());
  auto listing = RunChild({"/usr/bin/ctest", "--test-dir", build.string(), "--show-only=json-v1"});
  ASSERT_GT(listing.out.size(), std::size_t{1} << 20) << "the project is big enough to tell";
  auto r = Testfarm({"list", "--json", "--ctest", build.string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto parsed = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(parsed.is_array()) << r.out.substr(0, 400);
  EXPECT_EQ(parsed.size(), 4000u);
}

TEST(E2ECtest, ATestCtestCannotRunFailsWithWhyInEveryReport) {
  if (!fs::exists(kCmake)) GTEST_SKIP() << "cmake is not installed";
  TempDir dir;
  fs::path build = Configure(dir.path(),
                             "add_test(NAME missing COMMAND /nonexistent/bin/t)\n"  // line 4
                             "add_test(NAME fine COMMAND " +
                                 Fixture("tf_pass") +
                                 ")\n"
                                 "add_test(NAME off COMMAND /nonexistent/bin/t)\n"
                                 "set_tests_properties(off PROPERTIES DISABLED TRUE)\n");
  ASSERT_FALSE(build.empty());
  std::string junit = (dir.path() / "junit.xml").string();
  std::string json = (dir.path() / "report.json").string();
  auto r = Testfarm({"run", "--ctest", build.string(), "--junit", junit, "--json", json});
  EXPECT_EQ(r.exit_code, 1) << "ctest fails such a test (\"Not Run\"); so does testfarm\n"
                            << r.out << r.err;
  const std::string why = "ctest could not find the command for this test (is it built?)";
  std::string line = LineFor(r, "missing");
  EXPECT_EQ(line.rfind("ERROR", 0), 0u) << r.out;
  EXPECT_NE(line.find(why), std::string::npos) << line;
  EXPECT_NE(line.find("CMakeLists.txt:4"), std::string::npos) << "where add_test is: " << line;
  EXPECT_EQ(LineFor(r, "off").rfind("SKIP", 0), 0u) << "only DISABLED is skipped\n" << r.out;
  EXPECT_EQ(LineFor(r, "fine").rfind("PASS", 0), 0u) << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed, 1 skipped") << r.out;

  std::string xml = ReadFile(junit);
  std::size_t testcase = xml.find("<testcase name=\"missing\"");
  ASSERT_NE(testcase, std::string::npos) << xml;
  std::string missing_xml = xml.substr(testcase, xml.find("</testcase>", testcase) - testcase);
  EXPECT_NE(missing_xml.find("<error"), std::string::npos) << missing_xml;
  EXPECT_NE(missing_xml.find(why), std::string::npos) << missing_xml;
  EXPECT_NE(xml.find("<skipped message=\"disabled\""), std::string::npos) << xml;

  auto report = nlohmann::json::parse(ReadFile(json));
  bool seen = false;
  for (const auto& attempt : report["attempts"]) {
    if (attempt["name"] != "missing") continue;
    seen = true;
    EXPECT_EQ(attempt["status"], "failed") << attempt.dump();
    EXPECT_NE(attempt["reason"].get<std::string>().find(why), std::string::npos) << attempt.dump();
    EXPECT_EQ(attempt["process"]["outcome"], "spawn_failed") << attempt.dump();
  }
  EXPECT_TRUE(seen) << report.dump();
  EXPECT_EQ(report["run"]["failed"], 1) << report["run"].dump();
  EXPECT_EQ(report["run"]["skipped"], 1) << report["run"].dump();
}

TEST(E2ECtest, OutputExpressionsAreHeldAgainstTheOutputAsCtestDoes) {
  if (!fs::exists(kCmake)) GTEST_SKIP() << "cmake is not installed";
  TempDir dir;
  const std::string gtest = Fixture("tf_gtest");
  // What gtest_discover_tests registers: one case per test, skipped by its "[  SKIPPED ]" line.
  fs::path build = Configure(
      dir.path(),
      "add_test(NAME gskip COMMAND " + gtest + " --gtest_filter=Basic.Skipped)\n" +
          "add_test(NAME gpass COMMAND " + gtest + " --gtest_filter=Basic.Passes)\n" +
          R"cmake(set_tests_properties(gskip gpass PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
add_test(NAME passre COMMAND /bin/sh -c "echo all fine; exit 3")
set_tests_properties(passre PROPERTIES PASS_REGULAR_EXPRESSION "all (fine|good)")
add_test(NAME failre COMMAND /bin/sh -c "echo ERROR: disk full")
set_tests_properties(failre PROPERTIES FAIL_REGULAR_EXPRESSION "ERROR")
)cmake");
  ASSERT_FALSE(build.empty());
  auto r = Testfarm({"run", "--ctest", build.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(LineFor(r, "gskip").rfind("SKIP", 0), 0u) << r.out;
  EXPECT_NE(LineFor(r, "gskip").find("SKIP_REGULAR_EXPRESSION"), std::string::npos) << r.out;
  EXPECT_EQ(LineFor(r, "gpass").rfind("PASS", 0), 0u) << r.out;
  EXPECT_EQ(LineFor(r, "passre").rfind("PASS", 0), 0u) << "the exit code does not count\n" << r.out;
  EXPECT_EQ(LineFor(r, "failre").rfind("FAIL", 0), 0u) << r.out;
  EXPECT_NE(LineFor(r, "failre").find("FAIL_REGULAR_EXPRESSION 'ERROR'"), std::string::npos)
      << r.out;
  EXPECT_EQ(r.LastLine(), "2 passed, 1 failed, 1 skipped") << r.out;
  EXPECT_EQ(r.err.find("does not honour"), std::string::npos) << r.err;
}

// The step every test of the ordering project runs: it appends "start NAME" and "end NAME" to a
// log opened with O_APPEND (`>>`), so the log's line order is the order the steps happened in.
// Between the two it holds for a moment, so that a test wrongly running at the same time lands
// between them; an optional action checks or changes the fixture's state.
const char* const kStep = R"(#!/bin/sh
log="$1"; name="$2"; hold="$3"; action="$4"
echo "start $name" >> "$log"
echo "worker $name ${TESTFARM_WORKER:-}" >> "$log"
case "$action" in
  create:*) touch "${action#create:}" ;;
  need:*) [ -e "${action#need:}" ] || { echo "missing ${action#need:}" >> "$log"; exit 1; } ;;
  remove:*) rm "${action#remove:}" ;;
esac
sleep "$hold"
echo "end $name" >> "$log"
[ "$action" != fail ]
)";

// The tests' steps as the log recorded them.
class StepLog {
 public:
  explicit StepLog(const std::string& text) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }
  // Index of the line, or lines_.size() when absent.
  std::size_t At(const std::string& line) const {
    return static_cast<std::size_t>(std::find(lines_.begin(), lines_.end(), line) - lines_.begin());
  }
  bool Has(const std::string& line) const { return At(line) < lines_.size(); }
  // `before` ended before `after` started.
  bool EndedBefore(const std::string& before, const std::string& after) const {
    return Has("end " + before) && Has("start " + after) &&
           At("end " + before) < At("start " + after);
  }
  // While `name` ran, no other test did (none running at its start, none starting until its
  // end).
  bool RanAlone(const std::string& name) const {
    std::set<std::string> running;
    bool inside = false;
    for (const std::string& line : lines_) {
      bool start = line.rfind("start ", 0) == 0;
      std::string who = line.substr(line.find(' ') + 1);
      if (start && who == name) {
        if (!running.empty()) return false;
        inside = true;
      } else if (start) {
        if (inside) return false;
        running.insert(who);
      } else if (line.rfind("end ", 0) == 0) {
        if (who == name) return true;
        running.erase(who);
      }
    }
    return false;  // never ended
  }
  // The worker a test ran on ("worker NAME WORKER" lines).
  std::string WorkerOf(const std::string& name) const {
    const std::string prefix = "worker " + name + " ";
    for (const std::string& line : lines_) {
      if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
    }
    return {};
  }
  int Count(const std::string& line) const {
    return static_cast<int>(std::count(lines_.begin(), lines_.end(), line));
  }
  const std::vector<std::string>& lines() const { return lines_; }

 private:
  std::vector<std::string> lines_;
};

std::string Dump(const StepLog& log) {
  std::string text;
  for (const std::string& line : log.lines()) text += line + "\n";
  return text;
}

class E2ECtestOrdering : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kCmake)) GTEST_SKIP() << "cmake is not installed";
    state_ = dir_.path() / "state";
    log_ = dir_.path() / "steps.log";
    fs::create_directories(state_);
    std::ofstream(dir_.path() / "step.sh") << kStep;
    std::string step = "/bin/sh " + (dir_.path() / "step.sh").string() + " " + log_.string();
    std::string db = (state_ / "db").string();
    // Users and cleanups are listed before their setups, a test before what it depends on:
    // started in listing order, they would run first.
    build_ = Configure(
        dir_.path(),
        "add_test(NAME db_user1 COMMAND " + step + " db_user1 0.2 need:" + db + ")\n" +
            "add_test(NAME db_user2 COMMAND " + step + " db_user2 0.2 need:" + db + ")\n" +
            "add_test(NAME db_cleanup COMMAND " + step + " db_cleanup 0 remove:" + db + ")\n" +
            "add_test(NAME db_setup COMMAND " + step + " db_setup 0.2 create:" + db + ")\n" +
            "set_tests_properties(db_setup PROPERTIES FIXTURES_SETUP db)\n"
            "set_tests_properties(db_user1 db_user2 PROPERTIES FIXTURES_REQUIRED db)\n"
            "set_tests_properties(db_cleanup PROPERTIES FIXTURES_CLEANUP db)\n"
            "add_test(NAME later COMMAND " +
            step + " later 0)\n" + "add_test(NAME first COMMAND " + step + " first 0.2)\n" +
            "set_tests_properties(later PROPERTIES DEPENDS first)\n"
            "add_test(NAME lock_a COMMAND " +
            step + " lock_a 0.3)\n" + "add_test(NAME lock_b COMMAND " + step + " lock_b 0.3)\n" +
            "set_tests_properties(lock_a lock_b PROPERTIES RESOURCE_LOCK res)\n"
            "add_test(NAME wide COMMAND " +
            step + " wide 0.3)\n" + "set_tests_properties(wide PROPERTIES PROCESSORS 2)\n" +
            "add_test(NAME huge COMMAND " + step + " huge 0.1)\n" +
            "set_tests_properties(huge PROPERTIES PROCESSORS 64)\n" +
            "add_test(NAME broken_user COMMAND " + step + " broken_user 0)\n" +
            "add_test(NAME broken_cleanup COMMAND " + step + " broken_cleanup 0)\n" +
            "add_test(NAME broken_setup COMMAND " + step + " broken_setup 0 fail)\n" +
            "set_tests_properties(broken_setup PROPERTIES FIXTURES_SETUP broken)\n"
            "set_tests_properties(broken_user PROPERTIES FIXTURES_REQUIRED broken)\n"
            "set_tests_properties(broken_cleanup PROPERTIES FIXTURES_CLEANUP broken)\n");
  }

  // `testfarm run --ctest BUILD -j 2 ARGS...` on a fresh log.
  ChildResult Run(std::vector<std::string> args) {
    fs::remove(log_);
    args.insert(args.begin(), {"run", "--ctest", build_.string(), "-j", "2"});
    return Testfarm(args);
  }
  StepLog Log() const { return StepLog(ReadFile(log_)); }

  TempDir dir_;
  fs::path state_;
  fs::path log_;
  fs::path build_;
};

TEST_F(E2ECtestOrdering, FixturesDependsLocksAndProcessorsHold) {
  ASSERT_FALSE(build_.empty());
  auto r = Run({"--exclude", "broken_*"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "10 passed, 0 failed") << r.out;
  StepLog log = Log();
  for (const char* name : {"db_setup", "db_user1", "db_user2", "db_cleanup", "first", "later",
                           "lock_a", "lock_b", "wide", "huge"}) {
    EXPECT_EQ(log.Count(std::string("start ") + name), 1) << name << "\n" << Dump(log);
    EXPECT_EQ(log.Count(std::string("end ") + name), 1) << name << "\n" << Dump(log);
  }
  // The fixture: setup before its users, cleanup after both.
  EXPECT_TRUE(log.EndedBefore("db_setup", "db_user1")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("db_setup", "db_user2")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("db_user1", "db_cleanup")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("db_user2", "db_cleanup")) << Dump(log);
  // DEPENDS.
  EXPECT_TRUE(log.EndedBefore("first", "later")) << Dump(log);
  // RESOURCE_LOCK: one of the two entirely before the other.
  EXPECT_TRUE(log.EndedBefore("lock_a", "lock_b") || log.EndedBefore("lock_b", "lock_a"))
      << Dump(log);
  // PROCESSORS 2 of 2 slots, and 64 clamped to the 2 there are: alone, with a warning.
  EXPECT_TRUE(log.RanAlone("wide")) << Dump(log);
  EXPECT_TRUE(log.RanAlone("huge")) << Dump(log);
  EXPECT_NE(r.err.find("huge asks for PROCESSORS 64, more than the 2 slots of worker local"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Count(r.err, "PROCESSORS 64"), 1) << r.err;
  EXPECT_FALSE(fs::exists(state_ / "db")) << "the cleanup ran";
}

TEST_F(E2ECtestOrdering, SelectingAFixtureUserRunsItsSetupAndCleanup) {
  ASSERT_FALSE(build_.empty());
  auto listed = Testfarm({"list", "--ctest", build_.string(), "--filter", "db_user1"});
  EXPECT_EQ(listed.exit_code, 0) << listed.err;
  EXPECT_EQ(listed.out,
            "db_user1  [timeout 10m00s]\ndb_cleanup  [timeout 10m00s]\n"
            "db_setup  [timeout 10m00s]\n")
      << listed.out;

  auto r = Run({"--filter", "db_user1"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("testfarm: 3 tests"), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), "3 passed, 0 failed") << r.out;
  StepLog log = Log();
  EXPECT_TRUE(log.EndedBefore("db_setup", "db_user1")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("db_user1", "db_cleanup")) << Dump(log);
  EXPECT_FALSE(log.Has("start db_user2")) << Dump(log);
}

TEST_F(E2ECtestOrdering, UsersOfAFailedSetupDoNotRunAndSayWhyAndTheRunFails) {
  ASSERT_FALSE(build_.empty());
  std::string junit = (dir_.path() / "junit.xml").string();
  std::string json = (dir_.path() / "report.json").string();
  auto r = Run({"--filter", "broken_user", "--junit", junit, "--json", json});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed, 1 not run") << r.out;
  const std::string why = "its setup test 'broken_setup' failed";
  std::string line = LineFor(r, "broken_user");
  EXPECT_EQ(line.rfind("NOTRUN", 0), 0u) << r.out;
  EXPECT_NE(line.find("fixture 'broken': " + why), std::string::npos) << line;
  EXPECT_EQ(LineFor(r, "broken_setup").rfind("FAIL", 0), 0u) << r.out;
  EXPECT_EQ(LineFor(r, "broken_cleanup").rfind("PASS", 0), 0u) << "cleanup always runs\n" << r.out;
  StepLog log = Log();
  EXPECT_FALSE(log.Has("start broken_user")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("broken_setup", "broken_cleanup")) << Dump(log);

  std::string xml = ReadFile(junit);
  std::size_t testcase = xml.find("<testcase name=\"broken_user\"");
  ASSERT_NE(testcase, std::string::npos) << xml;
  std::string user_xml = xml.substr(testcase, xml.find("</testcase>", testcase) - testcase);
  EXPECT_NE(user_xml.find("<error"), std::string::npos) << user_xml;
  EXPECT_NE(user_xml.find("type=\"NOTRUN\""), std::string::npos) << user_xml;
  EXPECT_NE(user_xml.find("broken_setup"), std::string::npos) << user_xml;

  auto report = nlohmann::json::parse(ReadFile(json));
  bool seen = false;
  for (const auto& attempt : report["attempts"]) {
    if (attempt["name"] != "broken_user") continue;
    seen = true;
    EXPECT_EQ(attempt["status"], "not_run") << attempt.dump();
    EXPECT_NE(attempt["reason"].get<std::string>().find(why), std::string::npos) << attempt.dump();
  }
  EXPECT_TRUE(seen) << report.dump();
  EXPECT_EQ(report["run"]["not_run"], 1) << report["run"].dump();
}

TEST_F(E2ECtestOrdering, OnAFleetAFixtureRunsOnTheWorkerThatRanItsSetup) {
  ASSERT_FALSE(build_.empty());
  fs::remove(log_);
  std::string endpoint;
  auto coordinator = StartCoordinator({"--ctest", build_.string(), "--local-slots", "0",
                                       "--min-workers", "2", "--exclude", "broken_*"},
                                      &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  // --shared-fs: the workers see this machine's files, so the steps write to this log.
  auto a = StartWorker(endpoint, "a", {"--slots", "2", "--shared-fs"});
  auto b = StartWorker(endpoint, "b", {"--slots", "2", "--shared-fs"});
  ChildResult r = coordinator->Finish(std::chrono::milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "10 passed, 0 failed") << r.out;
  for (auto* worker : {a.get(), b.get()}) {
    ChildResult wr = worker->Finish(std::chrono::milliseconds(20000));
    EXPECT_EQ(wr.exit_code, 0) << wr.err;
  }
  StepLog log = Log();
  std::string home = log.WorkerOf("db_setup");
  EXPECT_TRUE(home == "a" || home == "b") << Dump(log);
  for (const char* name : {"db_user1", "db_user2", "db_cleanup"}) {
    EXPECT_EQ(log.WorkerOf(name), home) << name << "\n" << Dump(log);
  }
  EXPECT_TRUE(log.EndedBefore("db_setup", "db_user1")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("db_user2", "db_cleanup")) << Dump(log);
  EXPECT_TRUE(log.EndedBefore("lock_a", "lock_b") || log.EndedBefore("lock_b", "lock_a"))
      << "locks hold across workers\n"
      << Dump(log);
}

}  // namespace
}  // namespace testfarm::test
