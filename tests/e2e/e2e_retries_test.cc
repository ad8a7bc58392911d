// End to end: --retries and FLAKY. A fixture that fails with a given probability, seeded through
// its environment, gives exactly the classification and counts its draws say, in the console,
// JUnit (Surefire's flakyFailure / rerunFailure) and JSON (every attempt).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// tf_flaky's draw for run n of a test seeded `seed`.
bool FlakyFails(uint64_t seed, uint64_t n, double p) {
  uint64_t x = seed + n + 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) / 9007199254740992.0 < p;
}

// One tf_flaky suite per entry of `envs` ("KEY = \"value\", ..."), named flaky0...
fs::path FlakyManifest(const TempDir& dir, const std::vector<std::string>& envs,
                       const std::string& extra = "") {
  fs::path manifest = dir.path() / "flaky.toml";
  std::ofstream out(manifest);
  for (std::size_t i = 0; i < envs.size(); ++i) {
    out << "[[suite]]\nname = \"flaky" << i << "\"\ncommand = \"" << Fixture("tf_flaky")
        << "\"\nenv = { TF_FLAKY_STATE = \""
        << (dir.path() / ("state" + std::to_string(i))).string() << "\", " << envs[i] << " }\n"
        << extra << "\n";
  }
  return manifest;
}

TEST(E2ERetries, ASeededFlakyFixtureGivesExactlyTheExpectedClassificationAndCounts) {
  TempDir dir;
  constexpr int kTests = 16;
  constexpr unsigned kRetries = 2;
  constexpr double kP = 0.5;
  std::vector<std::string> envs;
  int passed = 0, flaky = 0, failed = 0, attempts = 0, rerun_failures = 0, flaky_failures = 0;
  for (int i = 0; i < kTests; ++i) {
    const uint64_t seed = 1000 + static_cast<uint64_t>(i);
    envs.push_back("TF_FLAKY_SEED = \"" + std::to_string(seed) + "\", TF_FLAKY_P = \"0.5\"");
    unsigned n = 0;
    while (n <= kRetries && FlakyFails(seed, n, kP)) ++n;
    attempts += static_cast<int>(std::min(n + 1, kRetries + 1));
    if (n == 0) {
      ++passed;
    } else if (n <= kRetries) {
      ++flaky;
      flaky_failures += static_cast<int>(n);
    } else {
      ++failed;
      rerun_failures += static_cast<int>(kRetries);
    }
  }
  ASSERT_GT(flaky, 0) << "the seeds must give some flaky tests";
  ASSERT_GT(failed, 0) << "and some that fail every time";
  const fs::path junit = dir.path() / "junit.xml";
  const fs::path report = dir.path() / "report.json";
  const fs::path history = dir.path() / "h.sqlite";
  auto r = Testfarm({"run", "-j", "2", "--retries", std::to_string(kRetries), "--manifest",
                     FlakyManifest(dir, envs).string(), "--junit", junit.string(), "--json",
                     report.string(), "--history", history.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), std::to_string(passed) + " passed, " + std::to_string(failed) +
                              " failed, " + std::to_string(flaky) + " flaky")
      << r.out;
  EXPECT_EQ(Count(r.out, "\nFLAKY "), flaky) << r.out;
  EXPECT_EQ(Count(r.out, "\nRETRY "), flaky_failures + rerun_failures) << r.out;
  EXPECT_NE(r.err.find("failed and then passed on a retry (FLAKY)"), std::string::npos) << r.err;

  std::ifstream xml_in(junit);
  std::string xml((std::istreambuf_iterator<char>(xml_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Count(xml, "<testcase "), kTests) << "one testcase per test";
  EXPECT_EQ(Count(xml, "<flakyFailure "), flaky_failures) << xml;
  EXPECT_EQ(Count(xml, "<rerunFailure "), rerun_failures) << xml;
  EXPECT_EQ(Count(xml, "<failure "), failed) << xml;
  ChildResult lint =
      RunChild({"xmllint", "--noout", "--schema",
                (fs::path(__FILE__).parent_path().parent_path() / "junit" / "junit.xsd").string(),
                junit.string()});
  EXPECT_EQ(lint.exit_code, 0) << lint.err;

  std::ifstream json_in(report);
  json doc = json::parse(json_in);
  EXPECT_EQ(doc["attempts"].size(), static_cast<std::size_t>(attempts)) << "every attempt";
  EXPECT_EQ(doc["run"]["tests"], kTests);
  EXPECT_EQ(doc["run"]["passed"], passed);
  EXPECT_EQ(doc["run"]["failed"], failed);
  EXPECT_EQ(doc["run"]["flaky"], flaky);
  int retried = 0;
  for (const json& a : doc["attempts"]) retried += a["retried"].get<bool>() ? 1 : 0;
  EXPECT_EQ(retried, flaky_failures + rerun_failures);

  // The history ranks exactly the flaky ones, each flaky in its one run.
  ChildResult ranked = Testfarm({"flaky", "--history", history.string(), "--json"});
  ASSERT_EQ(ranked.exit_code, 0) << ranked.err;
  json flakes = json::parse(ranked.out);
  ASSERT_EQ(flakes["tests"].size(), static_cast<std::size_t>(flaky)) << ranked.out;
  int flake_failures = 0;
  for (const json& t : flakes["tests"]) {
    EXPECT_EQ(t["flaky_runs"], 1);
    EXPECT_EQ(t["flake_rate"], 1.0);
    flake_failures += t["failures"].get<int>();
  }
  EXPECT_EQ(flake_failures, flaky_failures);
  // --rerun-failed takes the ones that failed for good, not the flaky ones.
  ChildResult rerun = Testfarm({"run", "--rerun-failed", "--history", history.string(),
                                "--manifest", (dir.path() / "flaky.toml").string()});
  EXPECT_NE(rerun.out.find("--rerun-failed: " + std::to_string(failed) + " of the " +
                           std::to_string(failed) + " tests"),
            std::string::npos)
      << rerun.out;
}

TEST(E2ERetries, FlakyResultDecidesTheExitCodeAndTheManifestSetsRetriesPerSuite) {
  for (const std::string& result : {std::string("pass"), std::string("fail")}) {
    SCOPED_TRACE(result);
    TempDir dir;
    // Fails its first run only; the suite asks for one retry itself.
    auto r = Testfarm({"run", "--flaky-result", result, "--manifest",
                       FlakyManifest(dir, {"TF_FLAKY_FAILS = \"1\""}, "retries = 1").string()});
    EXPECT_EQ(r.exit_code, result == "pass" ? 0 : 1) << r.out << r.err;
    EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 1 flaky") << r.out;
    EXPECT_EQ(Count(r.out, "\nFLAKY "), 1) << r.out;
    EXPECT_NE(r.out.find("flaky0  (passed on attempt 2 after 1 failure)"), std::string::npos)
        << r.out;
    EXPECT_NE(r.err.find("FLAKY): flaky0"), std::string::npos) << r.err;
  }
}

TEST(E2ERetries, WithoutRetriesAFailureIsAFailureAndTheLimitIsNamed) {
  TempDir dir;
  auto r = Testfarm({"run", "--manifest", FlakyManifest(dir, {"TF_FLAKY_FAILS = \"1\""}).string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.LastLine(), "0 passed, 1 failed") << r.out;
  auto too_many = Testfarm({"run", "--retries", "21", Fixture("tf_pass")});
  EXPECT_EQ(too_many.exit_code, 2);
  EXPECT_NE(too_many.err.find("not in range 0 to 20"), std::string::npos) << too_many.err;
}

}  // namespace
}  // namespace testfarm::test

namespace testfarm::test {
namespace {

TEST(E2ERepeats, RepeatSaysPassedKOfNPerTestAndEveryIterationIsInTheReports) {
  TempDir dir;
  constexpr int kIterations = 12;
  constexpr uint64_t kSeed = 77;
  int failures = 0;
  for (int n = 0; n < kIterations; ++n)
    failures += FlakyFails(kSeed, static_cast<uint64_t>(n), 0.3);
  ASSERT_GT(failures, 0);
  const fs::path report = dir.path() / "report.json";
  const fs::path junit = dir.path() / "junit.xml";
  auto r =
      Testfarm({"run", "-j", "2", "--repeat", std::to_string(kIterations), "--json",
                report.string(), "--junit", junit.string(), "--manifest",
                FlakyManifest(dir, {"TF_FLAKY_SEED = \"77\", TF_FLAKY_P = \"0.3\""}).string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  const std::string tally =
      "passed " + std::to_string(kIterations - failures) + " of " + std::to_string(kIterations);
  EXPECT_NE(r.out.find(tally), std::string::npos) << r.out;
  EXPECT_EQ(r.LastLine(), std::to_string(kIterations - failures) + " passed, " +
                              std::to_string(failures) + " failed")
      << r.out;
  // One line for the passing test, not one per iteration; every failure with its own.
  EXPECT_EQ(Count(r.out, "\nPASS "), 1) << r.out;
  EXPECT_EQ(Count(r.out, "\nFAIL "), failures) << r.out;
  std::ifstream in(report);
  json doc = json::parse(in);
  EXPECT_EQ(doc["run"]["tests"], kIterations);
  std::set<int> iterations;
  for (const json& a : doc["attempts"]) iterations.insert(a["iteration"].get<int>());
  EXPECT_EQ(iterations.size(), static_cast<std::size_t>(kIterations));
  std::ifstream xml_in(junit);
  std::string xml((std::istreambuf_iterator<char>(xml_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Count(xml, "<testcase "), kIterations);
  EXPECT_EQ(Count(xml, "name=\"iteration\""), kIterations - 1);
}

TEST(E2ERepeats, UntilFailStopsAtTheFirstFailingIterationAndSaysWhich) {
  TempDir dir;
  constexpr uint64_t kSeed = 5;
  int first_failure = 0;  // the run number that fails first
  while (!FlakyFails(kSeed, static_cast<uint64_t>(first_failure), 0.2)) ++first_failure;
  ASSERT_GT(first_failure, 0);
  auto r = Testfarm({"run", "-j", "1", "--until-fail", "--manifest",
                     FlakyManifest(dir, {"TF_FLAKY_SEED = \"5\", TF_FLAKY_P = \"0.2\""}).string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("--until-fail: iteration " + std::to_string(first_failure + 1) +
                       " failed (flaky0)"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(SummaryCounts(r.LastLine())["failed"], 1) << r.out;
}

TEST(E2ERepeats, BadRepeatOptionsAreUsageErrors) {
  for (const auto& [args, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"run", "--repeat", "0", Fixture("tf_pass")}, "--repeat"},
           {{"run", "--stress-duration", "-2h", Fixture("tf_pass")}, "not a positive duration"},
           {{"run", "--stress-duration", "soon", Fixture("tf_pass")}, "not a positive duration"},
           {{"run", "--farm", "tcp://127.0.0.1:7700", "--repeat", "3", Fixture("tf_pass")},
            "does not work with --farm yet"}}) {
    ChildResult r = Testfarm(args);
    EXPECT_EQ(r.exit_code, 2) << args[2];
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace testfarm::test

namespace testfarm::test {
namespace {

TEST(E2ERetries, OnAFarmARetryIsFlakyForTheClientToo) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {"--no-history"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  BackgroundChild worker({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "w1",
                          "--slots", "1", "--cache-dir", WorkerCacheDir()});
  const fs::path junit = dir.path() / "junit.xml";
  auto r = Testfarm({"run", "--farm", endpoint, "--retries", "1", "--junit", junit.string(),
                     "--manifest", FlakyManifest(dir, {"TF_FLAKY_FAILS = \"1\""}).string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "0 passed, 0 failed, 1 flaky") << r.out;
  EXPECT_EQ(Count(r.out, "\nRETRY "), 1) << r.out;
  std::ifstream xml_in(junit);
  std::string xml((std::istreambuf_iterator<char>(xml_in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(Count(xml, "<flakyFailure "), 1) << xml;
}

}  // namespace
}  // namespace testfarm::test
