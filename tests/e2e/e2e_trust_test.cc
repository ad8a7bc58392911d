// End to end: results a CI team can trust. Every selected test appears once in the console, the
// JUnit file and the JSON report with the same totals, whatever stops the run; bad input is a
// one-line exit 2; the CLI takes its options the way users write them.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// The integer value of attribute `name` on the <testsuites> element.
int JunitTotal(const std::string& xml, const std::string& name) {
  std::smatch m;
  std::regex element("<testsuites[^>]* " + name + "=\"([0-9]+)\"");
  if (!std::regex_search(xml, m, element)) return -1;
  return std::stoi(m[1]);
}

// A run's three accounts of the same tests: console, JUnit and JSON.
struct Accounts {
  ChildResult run;
  std::string junit;
  nlohmann::json json;
};

Accounts RunWithReports(std::vector<std::string> args, ChildOptions options = {}) {
  static int n = 0;
  static TempDir dir;
  fs::path junit = dir.path() / ("junit-" + std::to_string(++n) + ".xml");
  fs::path json = dir.path() / ("report-" + std::to_string(n) + ".json");
  args.insert(args.begin() + 1, {"--junit", junit.string(), "--json", json.string()});
  Accounts accounts;
  accounts.run = Testfarm(args, options);
  accounts.junit = ReadFile(junit);
  std::string text = ReadFile(json);
  accounts.json = text.empty() ? nlohmann::json() : nlohmann::json::parse(text);
  return accounts;
}

// Every name in `names` appears in the console, JUnit and JSON exactly once, and the three
// totals agree with the console's summary line.
void ExpectEveryTestOnceEverywhere(const Accounts& a, const std::vector<std::string>& names) {
  const std::string& out = a.run.out;
  for (const std::string& name : names) {
    EXPECT_NE(LineFor(out, name).find(name), std::string::npos) << name << " in:\n" << out;
    std::regex line("\n[A-Z]+ +[0-9.]+m?s  " +
                    std::regex_replace(name, std::regex("[.+*?()/\\[\\]]"), "\\$&") + "(  |\n)");
    auto begin = std::sregex_iterator(out.begin(), out.end(), line);
    EXPECT_EQ(std::distance(begin, std::sregex_iterator()), 1) << name << " in:\n" << out;
    std::string testcase = "<testcase name=\"" + name + "\"";  // a plain suite: one case
    EXPECT_EQ(Count(a.junit, testcase), 1) << name << " in:\n" << a.junit;
    int in_json = 0;
    for (const auto& attempt : a.json["attempts"]) in_json += attempt["name"] == name ? 1 : 0;
    EXPECT_EQ(in_json, 1) << name;
  }
  auto counts = SummaryCounts(a.run.LastLine());
  const auto& run = a.json["run"];
  EXPECT_EQ(run["tests"], names.size());
  EXPECT_EQ(run["passed"], counts["passed"]) << a.run.LastLine();
  EXPECT_EQ(run["failed"], counts["failed"]) << a.run.LastLine();
  EXPECT_EQ(run["skipped"], counts["skipped"]) << a.run.LastLine();
  EXPECT_EQ(run["cancelled"], counts["cancelled"]) << a.run.LastLine();
  EXPECT_EQ(run["not_run"], counts["not run"]) << a.run.LastLine();
  EXPECT_EQ(JunitTotal(a.junit, "tests"), static_cast<int>(names.size())) << a.junit;
  EXPECT_EQ(JunitTotal(a.junit, "skipped"), counts["skipped"]) << a.junit;
  EXPECT_EQ(JunitTotal(a.junit, "failures") + JunitTotal(a.junit, "errors"),
            counts["failed"] + counts["cancelled"] + counts["not run"])
      << a.junit;
  int total = 0;
  for (const auto& [word, count] : counts) total += count;
  EXPECT_EQ(total, static_cast<int>(names.size())) << a.run.LastLine();
  EXPECT_NE(out.find("\n" + std::to_string(names.size()) + " test" +
                     (names.size() == 1 ? "" : "s") + " in "),
            std::string::npos)
      << out;
}

TEST(E2ETrust, FailFastListsEveryTestInEveryReport) {
  std::vector<std::string> names = {Fixture("tf_fail"), Fixture("tf_hang"),
                                    Fixture("tf_hang") + "#2", Fixture("tf_sleep"),
                                    Fixture("tf_pass")};
  auto a = RunWithReports({"run", "-j", "1", "--fail-fast", "--kill-grace", "200ms",
                           Fixture("tf_fail"), Fixture("tf_hang"), Fixture("tf_hang"),
                           Fixture("tf_sleep"), Fixture("tf_pass")});
  EXPECT_EQ(a.run.exit_code, 1) << a.run.out << a.run.err;
  ExpectEveryTestOnceEverywhere(a, names);
  auto counts = SummaryCounts(a.run.LastLine());
  EXPECT_EQ(counts["failed"], 1) << a.run.out;
  EXPECT_GE(counts["not run"], 1) << "one slot and a prefetch of two leave some never sent";
  EXPECT_EQ(counts["skipped"], 0) << "nothing that could not run is skipped";
  EXPECT_NE(LineFor(a.run.out, Fixture("tf_pass")).find("the run stopped: fail-fast"),
            std::string::npos)
      << a.run.out;
}

TEST(E2ETrust, MaxFailListsEveryTestInEveryReport) {
  auto a = RunWithReports({"run", "-j", "1", "--max-fail", "1", "--kill-grace", "200ms",
                           Fixture("tf_fail"), Fixture("tf_hang"), Fixture("tf_pass"),
                           Fixture("tf_env")});
  EXPECT_EQ(a.run.exit_code, 1) << a.run.out << a.run.err;
  ExpectEveryTestOnceEverywhere(
      a, {Fixture("tf_fail"), Fixture("tf_hang"), Fixture("tf_pass"), Fixture("tf_env")});
}

TEST(E2ETrust, InterruptListsEveryTestInEveryReport) {
  ChildOptions options;
  options.signal_after_text = "joined with";
  options.signal_on_text = SIGINT;
  auto a = RunWithReports({"run", "-j", "1", "--kill-grace", "200ms", Fixture("tf_hang"),
                           Fixture("tf_pass"), Fixture("tf_env"), Fixture("tf_fds")},
                          options);
  EXPECT_EQ(a.run.exit_code, 130) << a.run.out << a.run.err;
  ExpectEveryTestOnceEverywhere(
      a, {Fixture("tf_hang"), Fixture("tf_pass"), Fixture("tf_env"), Fixture("tf_fds")});
}

TEST(E2ETrust, NoWorkerBeforeTheWaitListsEveryTestAsNotRun) {
  auto a = RunWithReports({"run", "--listen", "tcp://127.0.0.1:*", "--local-slots", "0",
                           "--wait-workers", "300ms", Fixture("tf_pass"), Fixture("tf_fail")});
  EXPECT_EQ(a.run.exit_code, 1) << a.run.out << a.run.err;
  ExpectEveryTestOnceEverywhere(a, {Fixture("tf_pass"), Fixture("tf_fail")});
  EXPECT_EQ(a.run.LastLine(), "0 passed, 0 failed, 2 not run") << a.run.out;
  EXPECT_NE(LineFor(a.run.out, Fixture("tf_pass")).find("NOTRUN"), std::string::npos) << a.run.out;
  EXPECT_NE(a.run.out.find("no worker joined within 300ms"), std::string::npos) << a.run.out;
}

TEST(E2ETrust, TheSameExecutableTwiceIsTwoSuitesCountedAlikeEverywhere) {
  auto a = RunWithReports({"run", Fixture("tf_pass"), Fixture("tf_pass")});
  EXPECT_EQ(a.run.exit_code, 0) << a.run.out << a.run.err;
  ExpectEveryTestOnceEverywhere(a, {Fixture("tf_pass"), Fixture("tf_pass") + "#2"});
  EXPECT_EQ(a.run.LastLine(), "2 passed, 0 failed");
}

TEST(E2ETrust, ASubMillisecondTimeoutIsATimeoutNotNone) {
  ChildOptions bounded;
  bounded.deadline = std::chrono::milliseconds(30000);
  auto r =
      Testfarm({"run", "--timeout", "0.4ms", "--kill-grace", "0", Fixture("tf_hang")}, bounded);
  EXPECT_FALSE(r.timed_out) << "0.4ms became no timeout at all";
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(LineFor(r, Fixture("tf_hang")).rfind("TIMEOUT", 0), std::string::npos) << r.out;
  EXPECT_NE(LineFor(r, Fixture("tf_hang")).find("(timed out, "), std::string::npos) << r.out;
}

TEST(E2ETrust, OneValuePerFilterFlagInEveryPosition) {
  const std::string gtest = Fixture("tf_gtest");
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"list", "--filter", "*.Passes", gtest},
           {"list", gtest, "--filter", "*.Passes"},
           {"list", "--filter=*.Passes", gtest},
           {"list", "--label", "none", "--filter", "*.Passes", gtest},
       }) {
    auto r = Testfarm(args);
    if (args[1] == "--label") {
      EXPECT_EQ(r.exit_code, 2) << r.err;  // the label selects nothing, but gtest is a suite
      EXPECT_NE(r.err.find("--label 'none'"), std::string::npos) << r.err;
      continue;
    }
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(r.out.find(gtest + "::Basic.Passes  ["), 0u) << r.out;
  }
  auto two = Testfarm(
      {"list", "--filter", "*.Passes", "--exclude", "*Fails*", "--filter", "*.AlsoPasses", gtest});
  EXPECT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(Count(two.out, "\n"), 2) << two.out;
}

TEST(E2ETrust, ListShowsTimeoutsAndLabelsAndFailsWhenAListingCrashed) {
  TempDir dir;
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\nname = \"env\"\ncommand = \"" << Fixture("tf_env")
                          << "\"\ntimeout = \"90s\"\nlabels = [\"smoke\", \"fast\"]\n";
  auto r = Testfarm({"list", "--manifest", manifest.string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "env  [timeout 1m30s]  [labels: smoke, fast]\n");
  auto crashed = Testfarm({"list", Fixture("tf_gtest_listing_crash"), Fixture("tf_pass")});
  EXPECT_EQ(crashed.exit_code, 1) << crashed.out << crashed.err;
  EXPECT_NE(crashed.out.find("(error: "), std::string::npos) << crashed.out;
  EXPECT_NE(crashed.err.find("could not be listed"), std::string::npos) << crashed.err;
}

TEST(E2ETrust, ShuffleIsReproducibleFromItsPrintedSeed) {
  std::vector<std::string> args = {"run", "-j", "1"};
  for (const char* name : {"tf_pass", "tf_env", "tf_fds", "tf_stdin"}) {
    for (int i = 0; i < 3; ++i) args.push_back(Fixture(name));
  }
  auto order = [](const ChildResult& r) {
    std::vector<std::string> names;
    std::istringstream lines(r.out);
    std::string line;
    static const std::regex per_test("^PASS +[0-9.]+m?s  (\\S+)");
    while (std::getline(lines, line)) {
      std::smatch m;
      if (std::regex_search(line, m, per_test)) names.push_back(m[1]);
    }
    return names;
  };
  auto random = args;
  random.push_back("--shuffle");
  auto first = Testfarm(random);
  ASSERT_EQ(first.exit_code, 0) << first.out << first.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(first.out, m, std::regex("shuffled with seed ([0-9]+)")))
      << first.out;
  auto seeded = args;
  seeded.push_back("--shuffle=" + m[1].str());
  auto again = Testfarm(seeded);
  EXPECT_EQ(order(again), order(first)) << "the printed seed repeats the order";
  EXPECT_EQ(order(first).size(), 12u);
  auto other = args;
  other.push_back("--shuffle=" + std::to_string(std::stoull(m[1].str()) + 1));
  EXPECT_NE(order(Testfarm(other)), order(first)) << "another seed, another order";
  auto plain = Testfarm(args);
  EXPECT_EQ(order(plain).front(), Fixture("tf_pass")) << "without --shuffle, in the given order";
  auto bad = Testfarm({"run", "--shuffle=soon", Fixture("tf_pass")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--shuffle"), std::string::npos) << bad.err;
}

TEST(E2ETrust, PartitionsAreDisjointAndCoverTheSelection) {
  const std::string gtest = Fixture("tf_gtest");
  auto all = Testfarm({"list", gtest});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  std::multiset<std::string> everything;
  std::istringstream lines(all.out);
  for (std::string line; std::getline(lines, line);) everything.insert(line);
  for (const std::string kind : {"hash", "count"}) {
    std::multiset<std::string> union_of_parts;
    for (int m = 1; m <= 3; ++m) {
      auto part = Testfarm({"list", "--partition", kind + ":" + std::to_string(m) + "/3", gtest});
      ASSERT_EQ(part.exit_code, 0) << part.err;
      std::istringstream part_lines(part.out);
      for (std::string line; std::getline(part_lines, line);) union_of_parts.insert(line);
    }
    EXPECT_EQ(union_of_parts, everything) << kind;
  }
  for (const char* bad : {"hash:0/3", "hash:4/3", "count:1", "mod:1/2", "hash:a/b", "hash:1/"}) {
    auto r = Testfarm({"list", "--partition", bad, gtest});
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--partition: expected hash:M/N or count:M/N"), std::string::npos)
        << r.err;
  }
}

TEST(E2ETrust, BadInputIsExit2WithOneLineNamingTheCulprit) {
  TempDir dir;
  fs::path loop = dir.path() / "loop";
  fs::create_symlink(loop, loop);  // every lookup through it fails with ELOOP
  const std::string long_name(300, 'x');
  fs::path build = dir.path() / "not-a-build";
  fs::create_directories(build);
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\nname = \"a\"\ncommand = \"" << Fixture("tf_pass")
                          << "\"\ncwd = \"no-such-dir\"\n";
  fs::path data_manifest = dir.path() / "data.toml";
  std::ofstream(data_manifest) << "[[suite]]\nname = \"a\"\ncommand = \"" << Fixture("tf_pass")
                               << "\"\ndata = [\"no-such-file.bin\"]\n";
  const std::string same = (dir.path() / "same.xml").string();
  const std::string pass = Fixture("tf_pass");
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{"run", "--junit", (loop / "x.xml").string(), pass}, "loop/x.xml"},
      {{"run", "--json", (dir.path() / long_name / "x.json").string(), pass}, "File name too long"},
      {{"run", "--trace", (loop / "t.json").string(), pass}, "Too many levels of symbolic links"},
      {{"run", "--junit", "/proc/version", pass}, "--junit: cannot write '/proc/version'"},
      {{"run", "--junit", same, "--json", same, pass}, "name the same file"},
      {{"run", "--trace", "", pass}, "a path is needed"},
      {{"run", "--manifest", (loop / "m.toml").string()}, "loop/m.toml"},
      {{"run", "--ctest", (loop / "b").string()}, "--ctest"},
      {{"run", "--ctest", build.string()}, "not a CMake build directory"},
      {{"run", (loop / "t").string()}, "cannot run"},
      {{"run", (dir.path() / long_name / "t").string()}, "File name too long"},
      {{"run", "--manifest", manifest.string()}, "cwd"},
      {{"run", "--manifest", data_manifest.string()}, "no-such-file.bin"},
      {{"run", "--listen", "tcp://127.0.0.1:99999", pass}, "'99999' is not a port number"},
      {{"worker", "--connect", "tcp://127.0.0.1:99999"}, "'99999' is not a port number"},
      {{"worker", "--connect", "tcp://127.0.0.1:0"}, "'0' is not a port number"},
      {{"worker", "--connect", "tcp://127.0.0.1:*"}, "'*' is not a port number"},
      {{"worker", "--bogus"}, "testfarm worker --help"},
      {{"run", "--coverage", pass}, "none of the tests' executables has a coverage mapping"},
  };
  for (const Case& c : cases) {
    auto r = Testfarm(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.expected << "\n" << r.out << r.err;
    EXPECT_EQ(r.out.find("PASS"), std::string::npos) << "nothing ran: " << r.out;
    EXPECT_NE(r.err.find("testfarm: error:"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << "wanted '" << c.expected << "' in:\n"
                                                         << r.err;
    EXPECT_EQ(r.err.find("terminate called"), std::string::npos) << r.err;
  }
}

TEST(E2ETrust, LogLevelMayFollowTheCommandAndWarningsReadLikeTheRest) {
  auto r = Testfarm({"run", "--log-level", "error", Fixture("tf_pass")});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto min_workers = Testfarm({"run", "--listen", "tcp://127.0.0.1:*", "--min-workers", "2",
                               "--wait-workers", "200ms", Fixture("tf_pass")});
  EXPECT_EQ(min_workers.exit_code, 0) << min_workers.out << min_workers.err;
  EXPECT_NE(min_workers.err.find("testfarm: warning: only 1 of the 2 workers asked for "
                                 "(--min-workers) joined within 200ms; starting with it"),
            std::string::npos)
      << min_workers.err;
}

}  // namespace
}  // namespace testfarm::test
