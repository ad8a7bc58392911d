// Discovery with a fake tool runner: listings and ctest's answer are given, nothing is run.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "coordinator/discovery.h"
#include "shared/llvm_tools.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;

// Answers each run by the first entry of `answers` whose key appears in its argv (or starts
// the argument it asks for a file with).
struct FakeRunner {
  std::vector<std::pair<std::string, Listing>> answers;
  std::vector<ToolRun> seen;
  unsigned parallel_seen = 0;

  ToolRunner Runner() {
    return [this](std::vector<ToolRun> runs, unsigned parallel) {
      parallel_seen = parallel;
      std::vector<Listing> out;
      for (ToolRun& run : runs) {
        Listing answer{ExitState::Exited(127), "", "no answer for this run", {}};
        for (const auto& [key, listing] : answers) {
          bool match = false;
          for (const std::string& arg : run.argv)
            match = match || arg.find(key) != std::string::npos;
          match = match || (!run.output_arg.empty() && run.output_arg.find(key) == 0);
          if (match) {
            answer = listing;
            break;
          }
        }
        seen.push_back(std::move(run));
        out.push_back(answer);
      }
      return out;
    };
  }
};

fs::path Touch(const fs::path& path, const std::string& content = "#!/bin/sh\n") {
  std::ofstream(path) << content;
  fs::permissions(path, fs::perms::owner_all);
  return path;
}

std::vector<std::string> Names(const std::vector<TestSpec>& tests) {
  std::vector<std::string> names;
  for (const TestSpec& t : tests) names.push_back(t.name);
  return names;
}

TEST(Discovery, GoogleTestSuitesAreListedThroughTheRunnerAllAtOnce) {
  test::TempDir dir;
  Touch(dir.path() / "g");
  Touch(dir.path() / "p");
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest)
      << "[[suite]]\nname = \"g\"\ncommand = \"g\"\nkind = \"gtest\"\n"
      << "env = { A = \"1\" }\n\n[[suite]]\ncommand = \"p\"\nkind = \"plain\"\n";
  FakeRunner fake;
  fake.answers.push_back({"--gtest_list_tests", {ExitState::Exited(0), "S.\n  a\n  b\n", "", {}}});
  SourceOptions options;
  options.manifest = manifest.string();
  DiscoveryNotes notes;
  auto tests = DiscoverTests(options, fake.Runner(), 3, &notes);
  ASSERT_TRUE(tests.ok()) << tests.error().message;
  EXPECT_EQ(Names(*tests), (std::vector<std::string>{"g::S.a", "g::S.b", "p"}));
  ASSERT_EQ(fake.seen.size(), 1u) << "only the GoogleTest suite is listed";
  EXPECT_EQ(fake.parallel_seen, 3u);
  EXPECT_EQ(fake.seen[0].env.at("A"), "1") << "listed with the suite's environment";
  EXPECT_EQ(fake.seen[0].env.at("LLVM_PROFILE_FILE"), "/dev/null");
  EXPECT_EQ(fake.seen[0].timeout, Millis(60000));
  EXPECT_EQ((*tests)[0].timeout, Millis(10 * 60 * 1000)) << "the default --timeout";
}

TEST(Discovery, APrintedListingThatDoesNotReadIsAskedForAgainAsJson) {
  test::TempDir dir;
  Touch(dir.path() / "g");
  Touch(dir.path() / "h");
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\ncommand = \"g\"\nkind = \"gtest\"\n\n"
                          << "[[suite]]\ncommand = \"h\"\nkind = \"gtest\"\n";
  FakeRunner fake;
  // g's parameter prints over two lines; h's listing reads.
  fake.answers.push_back({"--gtest_output=json:",
                          {ExitState::Exited(0), "garbage", "",
                           R"({"testsuites": [{"name": "P", "testsuite": [{"name": "x/0"}]}]})"}});
  fake.answers.push_back(
      {"/g", {ExitState::Exited(0), "P.\n  x/0  # GetParam() = a\nb\n", "", {}}});
  fake.answers.push_back({"/h", {ExitState::Exited(0), "S.\n  a\n", "", {}}});
  SourceOptions options;
  options.manifest = manifest.string();
  DiscoveryNotes notes;
  auto tests = DiscoverTests(options, fake.Runner(), 2, &notes);
  ASSERT_TRUE(tests.ok()) << tests.error().message;
  EXPECT_EQ(Names(*tests), (std::vector<std::string>{"g::P.x/0", "h::S.a"}));
  ASSERT_EQ(fake.seen.size(), 3u) << "both printed, then g again as JSON";
  EXPECT_TRUE(fake.seen[0].output_arg.empty());
  EXPECT_TRUE(fake.seen[1].output_arg.empty());
  EXPECT_EQ(fake.seen[2].output_arg, kListingJsonArg);
  EXPECT_NE(fake.seen[2].argv[0].find("/g"), std::string::npos);
}

TEST(Discovery, AListingThatCrashesIsATestThatFailsNotAnErrorForTheRun) {
  test::TempDir dir;
  fs::path g = Touch(dir.path() / "g");
  fs::path manifest = dir.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\ncommand = \"g\"\nkind = \"gtest\"\n";
  FakeRunner fake;
  fake.answers.push_back({"--gtest_list_tests", {ExitState::Signaled(11, false), "", "boom", {}}});
  SourceOptions options;
  options.manifest = manifest.string();
  DiscoveryNotes notes;
  auto tests = DiscoverTests(options, fake.Runner(), 1, &notes);
  ASSERT_TRUE(tests.ok()) << tests.error().message;
  ASSERT_EQ(tests->size(), 1u);
  EXPECT_EQ((*tests)[0].name, "g");
  EXPECT_FALSE((*tests)[0].error.empty());
}

TEST(Discovery, AnExecutableGivenTwiceRunsTwiceUnderNamesOfItsOwn) {
  test::TempDir dir;
  fs::path p = Touch(dir.path() / "p");
  FakeRunner fake;
  SourceOptions options;
  options.executables = {p.string(), p.string(), p.string()};
  DiscoveryNotes notes;
  auto tests = DiscoverTests(options, fake.Runner(), 1, &notes);
  ASSERT_TRUE(tests.ok()) << tests.error().message;
  EXPECT_EQ(Names(*tests),
            (std::vector<std::string>{p.string(), p.string() + "#2", p.string() + "#3"}));
  EXPECT_TRUE(fake.seen.empty()) << "a shell script is not a GoogleTest binary: nothing listed";
}

TEST(Discovery, BadSourcesAreErrorsThatNameTheFlag) {
  test::TempDir dir;
  FakeRunner fake;
  DiscoveryNotes notes;
  auto error_of = [&](SourceOptions options) {
    auto tests = DiscoverTests(options, fake.Runner(), 1, &notes);
    return tests.ok() ? std::string("(no error)") : tests.error().message;
  };
  {
    // Where no testfarm.toml is (one in the working directory would be picked up).
    fs::path was = fs::current_path();
    fs::current_path(dir.path());
    SourceOptions none;
    EXPECT_NE(error_of(none).find("nothing to run"), std::string::npos);
    fs::current_path(was);
  }
  SourceOptions missing;
  missing.executables = {(dir.path() / "nope").string()};
  EXPECT_NE(error_of(missing).find("cannot run '"), std::string::npos);
  SourceOptions directory;
  directory.executables = {dir.path().string()};
  EXPECT_NE(error_of(directory).find("it is a directory"), std::string::npos);
  SourceOptions bad_timeout;
  bad_timeout.executables = {Touch(dir.path() / "p").string()};
  bad_timeout.timeout = "soon";
  EXPECT_NE(error_of(bad_timeout).find("--timeout: not a duration: 'soon'"), std::string::npos);
  SourceOptions unmatched = bad_timeout;
  unmatched.timeout = "1s";
  unmatched.filters = {"nothing*"};
  EXPECT_NE(error_of(unmatched).find("nothing*"), std::string::npos);
  SourceOptions bad_partition = unmatched;
  bad_partition.filters.clear();
  bad_partition.partition = "hash:3/2";
  EXPECT_NE(error_of(bad_partition).find("--partition: expected hash:M/N or count:M/N"),
            std::string::npos);
}

TEST(Discovery, CtestDirectoriesAreCheckedThenImportedThroughTheRunner) {
  if (FindOnPath("ctest").empty()) GTEST_SKIP() << "ctest is not on PATH (it comes with cmake)";
  test::TempDir dir;
  FakeRunner fake;
  DiscoveryNotes notes;
  SourceOptions options;
  options.ctest_dir = (dir.path() / "absent").string();
  auto absent = GatherSuites(options, fake.Runner(), 1, &notes);
  ASSERT_FALSE(absent.ok());
  EXPECT_NE(absent.error().message.find("--ctest: '"), std::string::npos);
  options.ctest_dir = dir.path().string();
  auto not_cmake = GatherSuites(options, fake.Runner(), 1, &notes);
  ASSERT_FALSE(not_cmake.ok());
  EXPECT_NE(not_cmake.error().message.find("not a CMake build directory"), std::string::npos);
  Touch(dir.path() / "CMakeCache.txt", "");
  auto no_tests = GatherSuites(options, fake.Runner(), 1, &notes);
  ASSERT_FALSE(no_tests.ok());
  EXPECT_NE(no_tests.error().message.find("enable_testing()"), std::string::npos);
  EXPECT_TRUE(fake.seen.empty()) << "ctest is not run on a directory that cannot answer";

  Touch(dir.path() / "CTestTestfile.cmake", "");
  fake.answers.push_back({"--show-only", {ExitState::Exited(1), "", "CMake Error: boom", {}}});
  auto failed = GatherSuites(options, fake.Runner(), 1, &notes);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.error().message.find("ctest failed (exit 1): CMake Error: boom"),
            std::string::npos)
      << failed.error().message;

  fake.answers.clear();
  fake.answers.push_back(
      {"--show-only",
       {ExitState::Exited(0),
        R"({"kind": "ctestInfo", "tests": [{"name": "t1", "command": ["/bin/true"]},)"
        R"({"name": "t2", "command": ["/bin/true"], "properties": [{"name": "TIMEOUT_SIGNAL_NAME", "value": "SIGINT"}]}]})",
        "",
        {}}});
  auto suites = GatherSuites(options, fake.Runner(), 1, &notes);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  ASSERT_EQ(suites->size(), 2u);
  EXPECT_EQ((*suites)[0].name, "t1");
  EXPECT_EQ(fake.seen.back().argv[0], FindOnPath("ctest"));
  EXPECT_FALSE(notes.warnings.empty())
      << "TIMEOUT_SIGNAL_NAME is a property testfarm does not honour";
}

}  // namespace
}  // namespace testfarm::coordinator
