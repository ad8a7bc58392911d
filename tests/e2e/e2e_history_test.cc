// End to end: the run history as a user meets it. A second run starts with what failed and what
// is long; --rerun-failed; a corrupt, unwritable or directory history is a warning and the run
// still passes; two runs writing one history at once are both recorded; the queries.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A manifest: "short0".."short3" sleep 10 ms, "long" sleeps 400 ms (listed last) and "broken"
// fails.
fs::path SkewedManifest(const TempDir& dir) {
  fs::path manifest = dir.path() / "skewed.toml";
  std::ofstream out(manifest);
  auto suite = [&](const std::string& name, const std::string& command, const std::string& arg) {
    out << "[[suite]]\nname = \"" << name << "\"\ncommand = \"" << Fixture(command)
        << "\"\nargs = [\"" << arg << "\"]\n\n";
  };
  for (int i = 0; i < 4; ++i) suite("short" + std::to_string(i), "tf_sleep", "10");
  suite("broken", "tf_fail", "1");
  suite("long", "tf_sleep", "400");
  return manifest;
}

// The tests in the order their START lines came (-v).
std::vector<std::string> StartOrder(const std::string& out) {
  std::vector<std::string> names;
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("START", 0) != 0) continue;
    std::istringstream words(line);
    std::string start, name;
    words >> start >> name;
    names.push_back(name);
  }
  return names;
}

json HistoryOf(const fs::path& history, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"history", "--history", history.string(), "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ChildResult r = Testfarm(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out, nullptr, false);
}

TEST(E2EHistory, TheSecondRunStartsWithWhatFailedThenTheLongestAndBothAreRecorded) {
  TempDir dir;
  const fs::path history = dir.path() / "h.sqlite";
  const std::string manifest = SkewedManifest(dir).string();
  auto first = Testfarm({"run", "-v", "-j", "1", "--history", history.string(), "--run-label", "c1",
                         "--manifest", manifest});
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
  EXPECT_EQ(StartOrder(first.out),
            (std::vector<std::string>{"short0", "short1", "short2", "short3", "broken", "long"}))
      << "no history yet: the manifest's order";
  auto second = Testfarm({"run", "-v", "-j", "1", "--history", history.string(), "--run-label",
                          "c2", "--manifest", manifest});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  std::vector<std::string> order = StartOrder(second.out);
  ASSERT_EQ(order.size(), 6u) << second.out;
  EXPECT_EQ(order[0], "broken") << second.out;
  EXPECT_EQ(order[1], "long") << second.out;

  json doc = HistoryOf(history, {"--test", "long"});
  ASSERT_EQ(doc["tests"].size(), 1u) << doc.dump();
  const json& attempts = doc["tests"][0]["attempts"];
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_EQ(attempts[0]["label"], "c1");
  EXPECT_EQ(attempts[1]["label"], "c2");
  EXPECT_EQ(attempts[1]["outcome"], "passed");
  EXPECT_GE(attempts[1]["duration_ms"].get<int>(), 400);
  EXPECT_GT(attempts[1]["peak_rss_kb"].get<int>(), 0);
  EXPECT_EQ(attempts[1]["worker"], "local");
}

TEST(E2EHistory, RerunFailedRunsOnlyWhatFailedInTheLastRunWithTheLabel) {
  TempDir dir;
  const fs::path history = dir.path() / "h.sqlite";
  const std::string manifest = SkewedManifest(dir).string();
  auto none =
      Testfarm({"run", "--rerun-failed", "--history", history.string(), "--manifest", manifest});
  EXPECT_EQ(none.exit_code, 2) << none.out;
  EXPECT_NE(none.err.find("holds no run"), std::string::npos) << none.err;

  auto main_run = Testfarm(
      {"run", "--history", history.string(), "--run-label", "main-1", "--manifest", manifest});
  EXPECT_EQ(main_run.exit_code, 1);
  auto rerun =
      Testfarm({"run", "--rerun-failed", "--history", history.string(), "--manifest", manifest});
  EXPECT_EQ(rerun.exit_code, 1) << rerun.out << rerun.err;
  EXPECT_EQ(rerun.LastLine(), "0 passed, 1 failed") << rerun.out;
  EXPECT_NE(LineFor(rerun, "broken").find("FAIL"), std::string::npos) << rerun.out;
  // A label no run has.
  auto other = Testfarm({"run", "--rerun-failed", "--run-label", "nightly", "--history",
                         history.string(), "--manifest", manifest});
  EXPECT_EQ(other.exit_code, 2);
  EXPECT_NE(other.err.find("labelled nightly*"), std::string::npos) << other.err;
  // Nothing of the selection failed: nothing to run, and that is a pass.
  auto passing = Testfarm({"run", "--rerun-failed", "--run-label", "main", "--history",
                           history.string(), "--manifest", manifest, "--filter", "short*"});
  EXPECT_EQ(passing.exit_code, 0) << passing.out << passing.err;
  EXPECT_NE(passing.out.find("no selected test failed"), std::string::npos) << passing.out;
}

TEST(E2EHistory, ACorruptHistoryIsMovedAsideWithAWarningAndTheRunPasses) {
  TempDir dir;
  const fs::path history = dir.path() / "h.sqlite";
  std::ofstream(history) << std::string(5000, '#');
  auto r = Testfarm({"run", "--history", history.string(), Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.LastLine(), "1 passed, 0 failed");
  EXPECT_NE(r.err.find("testfarm: warning: history: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("moved it to"), std::string::npos) << r.err;
  EXPECT_EQ(HistoryOf(history)["tests"].size(), 1u) << "the fresh history has the run";
}

TEST(E2EHistory, AHistoryThatCannotBeWrittenIsAWarningNotAFailedRun) {
  TempDir dir;
  // /proc takes no new files, even for root; a directory is not a file.
  for (const std::string& path :
       {std::string("/proc/testfarm-history/h.sqlite"), dir.path().string()}) {
    SCOPED_TRACE(path);
    auto r = Testfarm({"run", "--history", path, Fixture("tf_pass")});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.LastLine(), "1 passed, 0 failed");
    EXPECT_NE(r.err.find("testfarm: warning: history: " + path.substr(0, 15)), std::string::npos)
        << r.err;
    EXPECT_NE(r.err.find("this run is neither ordered nor recorded"), std::string::npos) << r.err;
  }
}

TEST(E2EHistory, TheDefaultIsUnderTheWorkingDirectoryAndNoHistoryKeepsNone) {
  TempDir dir;
  ChildOptions here;
  here.cwd = dir.path().string();
  here.extra_env = {"TESTFARM_HISTORY="};  // the default, not the tests' "off"
  auto none = Testfarm({"run", "--no-history", Fixture("tf_pass")}, here);
  EXPECT_EQ(none.exit_code, 0) << none.err;
  EXPECT_FALSE(fs::exists(dir.path() / ".testfarm"));
  auto kept = Testfarm({"run", Fixture("tf_pass")}, here);
  EXPECT_EQ(kept.exit_code, 0) << kept.err;
  EXPECT_TRUE(fs::exists(dir.path() / ".testfarm" / "history.sqlite"));
  auto shown = Testfarm({"history"}, here);
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_NE(shown.out.find("1 attempts: 1 passed, 0 failed"), std::string::npos) << shown.out;
}

TEST(E2EHistory, TwoRunsWritingOneHistoryAtOnceAreBothRecorded) {
  TempDir dir;
  const fs::path history = dir.path() / "h.sqlite";
  const std::string a = SleepManifest(dir, 40, 5, "a").string();
  const std::string b = SleepManifest(dir, 40, 5, "b").string();
  BackgroundChild first(
      {TESTFARM_BINARY, "run", "-j", "2", "--history", history.string(), "--manifest", a});
  BackgroundChild second(
      {TESTFARM_BINARY, "run", "-j", "2", "--history", history.string(), "--manifest", b});
  ChildResult one = first.Finish(std::chrono::seconds(60));
  ChildResult two = second.Finish(std::chrono::seconds(60));
  EXPECT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(one.err.find("warning"), std::string::npos) << one.err;
  EXPECT_EQ(two.err.find("warning"), std::string::npos) << two.err;
  EXPECT_EQ(HistoryOf(history, {"--test", "a*"})["tests"].size(), 40u);
  EXPECT_EQ(HistoryOf(history, {"--test", "b*"})["tests"].size(), 40u);
}

TEST(E2EHistory, QueriesRefuseBadInputClearly) {
  TempDir dir;
  auto bad_since =
      Testfarm({"history", "--history", (dir.path() / "h").string(), "--since", "-1d"});
  EXPECT_EQ(bad_since.exit_code, 2);
  EXPECT_NE(bad_since.err.find("--since: not a duration"), std::string::npos) << bad_since.err;
  auto missing = Testfarm({"flaky", "--history", (dir.path() / "none.sqlite").string()});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("no history there"), std::string::npos) << missing.err;
}

}  // namespace
}  // namespace testfarm::test

namespace testfarm::test {
namespace {

TEST(E2EHistory, AFarmKeepsOneHistoryForEveryRunItServesAndAnswersQueriesAboutIt) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {"--history", (dir.path() / "farm.sqlite").string()}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  BackgroundChild worker({TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", "w1",
                          "--slots", "1", "--cache-dir", WorkerCacheDir()});
  const std::string manifest = SkewedManifest(dir).string();
  auto first = Testfarm({"run", "--farm", endpoint, "--run-label", "pr-1", "--manifest", manifest});
  EXPECT_EQ(first.exit_code, 1) << first.out << first.err;
  // The second run (another pipeline) is ordered by the first one's history.
  auto second =
      Testfarm({"run", "-v", "--farm", endpoint, "--run-label", "pr-2", "--manifest", manifest});
  EXPECT_EQ(second.exit_code, 1) << second.out << second.err;
  std::vector<std::string> order = StartOrder(second.out);
  ASSERT_EQ(order.size(), 6u) << second.out;
  EXPECT_EQ(order[0], "broken") << second.out;
  EXPECT_EQ(order[1], "long") << second.out;

  auto shown = Testfarm({"history", "--farm", endpoint, "--test", "long", "--json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  json doc = json::parse(shown.out, nullptr, false);
  ASSERT_EQ(doc["tests"].size(), 1u) << shown.out;
  EXPECT_EQ(doc["tests"][0]["attempts"].size(), 2u);
  EXPECT_EQ(doc["tests"][0]["attempts"][0]["label"], "pr-1");
  EXPECT_EQ(doc["tests"][0]["attempts"][0]["worker"], "w1");
  auto flaky = Testfarm({"flaky", "--farm", endpoint});
  EXPECT_EQ(flaky.exit_code, 0) << flaky.err;
  EXPECT_NE(flaky.out.find("no flaky test"), std::string::npos) << flaky.out;

  auto rerun = Testfarm(
      {"run", "--farm", endpoint, "--rerun-failed", "--run-label", "pr-1", "--manifest", manifest});
  EXPECT_EQ(rerun.exit_code, 1) << rerun.out << rerun.err;
  EXPECT_EQ(rerun.LastLine(), "0 passed, 1 failed") << rerun.out;
}

TEST(E2EHistory, AFarmWithoutHistorySaysSo) {
  TempDir dir;
  std::string endpoint;
  auto farm = StartFarm(dir, {"--no-history"}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  auto r = Testfarm({"history", "--farm", endpoint});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("this farm keeps no history"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace testfarm::test
