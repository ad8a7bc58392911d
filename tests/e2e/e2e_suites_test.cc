// End to end for real suites: GoogleTest binaries case by case and in batches, a manifest, a
// CTest build directory, selection, `testfarm list`, and the report files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;

const std::string kGtest = Fixture("tf_gtest");
std::string Case(const std::string& name) {
  return kGtest + "::" + name;
}

void ExpectTfGtestClassified(const ChildResult& r) {
  EXPECT_NE(LineFor(r, Case("Basic.Passes")).rfind("PASS", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.Fails")).rfind("FAIL", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.Crashes")).rfind("CRASH", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.Crashes")).find("SIGSEGV"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.Hangs")).rfind("TIMEOUT", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.Skipped")).rfind("SKIP", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Case("Basic.DISABLED_Ignored")).rfind("SKIP", 0), std::string::npos)
      << r.out;
  EXPECT_NE(LineFor(r, Case("Small/Param.BelowThree/2")).rfind("FAIL", 0), std::string::npos);
  EXPECT_NE(LineFor(r, Case("Typed/1.ZeroIsFalse")).rfind("PASS", 0), std::string::npos);
  EXPECT_NE(r.out.find("tf_gtest: two plus two"), std::string::npos) << "failure message shown";
  EXPECT_EQ(r.LastLine(), "7 passed, 4 failed, 2 skipped") << r.out;
  EXPECT_EQ(r.exit_code, 1);
}

TEST(E2ESuites, GtestBinaryRunsOneProcessPerCase) {
  auto r = Testfarm({"run", "-j", "2", "--timeout", "2s", "--kill-grace", "200ms", kGtest});
  ExpectTfGtestClassified(r);
}

TEST(E2ESuites, BatchModeAttributesTheCrashToExactlyOneCase) {
  auto r = Testfarm({"run", "-j", "2", "--isolation", "batch", "--timeout", "2s", "--kill-grace",
                     "200ms", kGtest});
  ExpectTfGtestClassified(r);
  EXPECT_EQ(Count(r.out, "CRASH "), 2) << "one per-test line and one in the summary:\n" << r.out;
}

TEST(E2ESuites, BatchModeRunsEveryCaseOfABigSuiteOnce) {
  auto r = Testfarm({"run", "-j", "2", "--isolation", "batch", Fixture("tf_gtest_1000"),
                     Fixture("tf_gtest_pass")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::smatch m;
  std::string last = r.LastLine();
  ASSERT_TRUE(std::regex_match(last, m, std::regex("^([0-9]+) passed, 0 failed$"))) << last;
  EXPECT_GE(std::stoi(m[1]), 1000);
}

TEST(E2ESuites, FilterExcludeAndList) {
  auto list = Testfarm({"list", kGtest, "--filter", "*Basic.*", "--exclude", "*Hangs"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find(Case("Basic.Passes") + "  [timeout 10m00s]\n"), std::string::npos)
      << list.out;
  EXPECT_EQ(list.out.find("Hangs"), std::string::npos) << list.out;
  EXPECT_EQ(list.out.find("Typed"), std::string::npos) << list.out;
  EXPECT_NE(
      list.out.find(Case("Basic.DISABLED_Ignored") + "  [timeout 10m00s]  (skipped: disabled"),
      std::string::npos);

  auto json = Testfarm({"list", "--json", kGtest, "--filter", "*Param*"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  ASSERT_EQ(parsed.size(), 3u);
  EXPECT_EQ(parsed[0]["case"], "Small/Param.BelowThree/0");
  EXPECT_EQ(parsed[0]["kind"], "gtest");

  auto run = Testfarm({"run", kGtest, "--filter", "*.Passes", "--filter", "*.AlsoPasses"});
  EXPECT_EQ(run.exit_code, 0) << run.out;
  EXPECT_EQ(run.LastLine(), "2 passed, 0 failed");
}

TEST(E2ESuites, ABinaryWhoseListingIsLargerThanTheOutputCapIsListedWhole) {
  // 100,000 cases print a 3 MB listing, beyond the 1 MiB kept of a test's output: a listing is
  // not a test's output and is kept whole.
  ChildOptions options;
  options.extra_env = {"TF_GTEST_CASES=100000"};
  auto list = Testfarm({"list", "--json", Fixture("tf_gtest_many")}, options);
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto parsed = nlohmann::json::parse(list.out, nullptr, false);
  ASSERT_TRUE(parsed.is_array()) << list.out.substr(0, 400);
  ASSERT_EQ(parsed.size(), 100000u);
  EXPECT_EQ(parsed[0]["case"], "All/Many.Case/0");
  EXPECT_EQ(parsed[99999]["case"], "All/Many.Case/99999");
}

// tf_gtest_many's 20,000 cases (with `env`, e.g. which fail) in batches on two slots: the
// console's result, its JSON report's attempts, and the distinct names among them.
struct ManyCasesRun {
  ChildResult console;
  nlohmann::json attempts;
  std::set<std::string> names;
};
ManyCasesRun RunManyCasesInBatches(const std::string& env) {
  TempDir dir;
  ChildOptions options;
  options.extra_env = {"TF_GTEST_CASES=20000", env};
  const std::string json = (dir.path() / "r.json").string();
  ManyCasesRun run;
  run.console = Testfarm({"run", "--no-history", "-j", "2", "--isolation", "batch", "--json", json,
                          Fixture("tf_gtest_many")},
                         options);
  std::ifstream in(json);
  auto report = nlohmann::json::parse(in, nullptr, false);
  if (report.is_object()) run.attempts = report["attempts"];
  for (const auto& attempt : run.attempts) run.names.insert(attempt["name"].get<std::string>());
  return run;
}

TEST(E2ESuites, BatchModeSplitsAWholeBinaryIntoGtestsShardsAndReportsEveryCaseOnce) {
  // 20,000 cases: the first small batches learn the case time, then the rest goes out as gtest's
  // own shards (no filter naming 20,000 cases); the three failures are found wherever they fall.
  ManyCasesRun run = RunManyCasesInBatches("TF_GTEST_FAIL=3,17,19999");
  EXPECT_EQ(run.console.exit_code, 1) << run.console.err;
  EXPECT_EQ(run.console.LastLine(), "19997 passed, 3 failed") << run.console.err;
  ASSERT_EQ(run.attempts.size(), 20000u);
  EXPECT_EQ(run.names.size(), 20000u) << "each case once";
  for (const auto& attempt : run.attempts) {
    EXPECT_EQ(attempt["attempt"], 1) << attempt.dump() << ": not re-run alone";
  }
}

TEST(E2ESuites, BatchModeFindsTheOneCrashAmongManyCasesWithoutRunningThemAllAlone) {
  // 20,000 cases in two shards; case 12345 aborts. Its shard's 10,000 cases run again in
  // batches that split until the crash is alone: a few dozen processes, not 10,000.
  ManyCasesRun run = RunManyCasesInBatches("TF_GTEST_CRASH=12345");
  EXPECT_EQ(run.console.exit_code, 1) << run.console.err;
  EXPECT_EQ(run.console.LastLine(), "19999 passed, 1 failed") << run.console.err;
  const std::string crash =
      LineFor(run.console, Fixture("tf_gtest_many") + "::All/Many.Case/12345");
  EXPECT_EQ(crash.rfind("CRASH", 0), 0u) << crash;
  EXPECT_NE(crash.find("SIGABRT"), std::string::npos) << crash;
  ASSERT_EQ(run.attempts.size(), 20000u);
  EXPECT_EQ(run.names.size(), 20000u) << "each case once";
  std::size_t alone = 0;
  for (const auto& attempt : run.attempts) alone += attempt["batch"].get<bool>() ? 0 : 1;
  EXPECT_LE(alone, 8u) << "only the last few around the crash ran alone";
}

TEST(E2ESuites, ASelectionOfNothingIsAnError) {
  auto r = Testfarm({"run", kGtest, "--filter", "*NoSuchTest*"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--filter '*NoSuchTest*' matches no test"), std::string::npos) << r.err;
}

TEST(E2ESuites, ABinaryThatCrashesWhileListingIsAClearErrorForThatSuite) {
  auto r = Testfarm({"run", Fixture("tf_gtest_listing_crash"), Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  std::string line = LineFor(r, Fixture("tf_gtest_listing_crash"));
  EXPECT_NE(line.find("listing its tests failed"), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), "1 passed, 1 failed") << r.out;
}

TEST(E2ESuites, ManifestSuitesWithKindsLabelsAndEnv) {
  TempDir dir;
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[defaults]\ntimeout = \"2s\"\n\n"
                          << "[[suite]]\nname = \"gt\"\ncommand = \"" << kGtest << "\"\n"
                          << "kind = \"gtest\"\nlabels = [\"unit\"]\n\n"
                          << "[[suite]]\nname = \"env\"\ncommand = \"" << Fixture("tf_env")
                          << "\"\n"
                          << "labels = [\"smoke\"]\nenv = { EXTRA = \"1\" }\n";
  auto r = Testfarm({"run", "--manifest", manifest.string(), "--label", "smoke"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "1 passed, 0 failed") << r.out;

  auto list = Testfarm({"list", "--manifest", manifest.string(), "--filter", "gt::Basic.P*"});
  EXPECT_EQ(list.out, "gt::Basic.Passes  [timeout 2.00s]  [labels: unit]\n")
      << list.out << list.err;

  std::ofstream(manifest) << "[[suite]]\nname = \"bad\"\ncommand = \"" << kGtest
                          << "\"\ntimeout = \"soon\"\n";
  auto bad = Testfarm({"run", "--manifest", manifest.string()});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("testfarm.toml:4:"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("timeout"), std::string::npos) << bad.err;
}

TEST(E2ESuites, ReportsAreWrittenAndAnUnwritablePathIsRefusedUpFront) {
  TempDir dir;
  std::string junit = (dir.path() / "junit.xml").string();
  std::string json = (dir.path() / "report.json").string();
  std::string trace = (dir.path() / "trace.json").string();
  auto r = Testfarm({"run", "-j", "2", "--timeout", "2s", "--kill-grace", "200ms", "--junit", junit,
                     "--json", json, "--trace", trace, kGtest, Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  std::ifstream junit_in(junit);
  std::string xml((std::istreambuf_iterator<char>(junit_in)), {});
  EXPECT_NE(xml.find("<testsuite name=\"" + kGtest + "\""), std::string::npos) << xml;
  EXPECT_NE(xml.find("classname=\"Basic\""), std::string::npos);
  auto report = nlohmann::json::parse(std::ifstream(json));
  EXPECT_EQ(report["attempts"].size(), 14u);
  auto events = nlohmann::json::parse(std::ifstream(trace));
  EXPECT_GE(events["traceEvents"].size(), 12u);

  auto refused = Testfarm({"run", "--junit", "/no/such/dir/junit.xml", Fixture("tf_pass")});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--junit: cannot write '/no/such/dir/junit.xml'"), std::string::npos)
      << refused.err;
  EXPECT_EQ(refused.out, "") << "nothing ran";
}

TEST(E2ESuites, CtestImportHonoursProperties) {
  if (!fs::exists("/usr/bin/cmake")) GTEST_SKIP() << "cmake is not installed";
  TempDir dir;
  fs::path src = dir.path() / "src";
  fs::create_directories(src);
  std::ofstream(src / "CMakeLists.txt")
      << "cmake_minimum_required(VERSION 3.20)\nproject(p NONE)\nenable_testing()\n"
      << "add_test(NAME passes COMMAND " << Fixture("tf_pass") << ")\n"
      << "add_test(NAME expected_failure COMMAND " << Fixture("tf_fail") << ")\n"
      << "set_tests_properties(expected_failure PROPERTIES WILL_FAIL TRUE LABELS slow)\n"
      << "add_test(NAME skipper COMMAND " << Fixture("tf_fail") << " 77)\n"
      << "set_tests_properties(skipper PROPERTIES SKIP_RETURN_CODE 77)\n"
      << "add_test(NAME off COMMAND " << Fixture("tf_fail") << ")\n"
      << "set_tests_properties(off PROPERTIES DISABLED TRUE)\n"
      << "add_test(NAME env COMMAND " << Fixture("tf_env") << ")\n"
      << "set_tests_properties(env PROPERTIES ENVIRONMENT \"A=1;B=2\" WORKING_DIRECTORY "
      << dir.path().string() << " RUN_SERIAL TRUE)\n";
  fs::path build = dir.path() / "build";
  auto configure = RunChild({"/usr/bin/cmake", "-S", src.string(), "-B", build.string()});
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  auto r = Testfarm({"run", "--ctest", build.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "3 passed, 0 failed, 2 skipped") << r.out;
  EXPECT_NE(LineFor(r, "skipper").find("SKIP_RETURN_CODE"), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, "off").find("disabled"), std::string::npos) << r.out;
  auto slow = Testfarm({"list", "--ctest", build.string(), "--label", "slow"});
  EXPECT_EQ(slow.out, "expected_failure  [timeout 10m00s]  [labels: slow]\n")
      << slow.out << slow.err;

  auto missing = Testfarm({"run", "--ctest", (dir.path() / "nope").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("No such file or directory"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace testfarm::test
