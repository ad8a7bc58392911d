// GoogleTest support against real gtest binaries (tests/fixtures/gtest): what they list, what
// their JSON reports say, which of them IsGtestBinary recognises, and a binary that crashes
// while listing.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/gtest.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

using Status = GtestCaseResult::Status;

std::string Fixture(const std::string& name) {
  return std::string(TESTFARM_FIXTURE_DIR) + "/" + name;
}

// Runs `command` through the shell, which `exec`s it: the status is the program's own, a
// signal included. The fixture paths hold no characters the shell would interpret.
test::ChildResult RunShell(const std::string& command) {
  return test::RunChild({"/bin/sh", "-c", "exec " + command});
}

bool ExitedWith(const test::ChildResult& ran, int code) {
  return ran.exit_code == code;
}

bool DiedOf(const test::ChildResult& ran, int signal) {
  return ran.signal == signal;
}

std::vector<std::string> Names(const std::vector<GtestCase>& cases) {
  std::vector<std::string> names;
  for (const GtestCase& c : cases) names.push_back(c.name);
  return names;
}

class GtestFixtureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(temp_.path().empty());
    dir_ = temp_.path();
  }

  // Runs `fixture` on `cases` the way testfarm does: a filter and GTEST_OUTPUT=json.
  test::ChildResult RunCases(const std::string& fixture, const std::vector<std::string>& cases) {
    return RunShell("env GTEST_OUTPUT=json:" + JsonPath() + " " + Fixture(fixture) +
                    " '--gtest_filter=" + GtestFilterFor(cases) + "'");
  }

  std::string JsonPath() const { return (dir_ / "report.json").string(); }

  std::string ReadJson() const {
    std::ifstream in(JsonPath(), std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
  }

  test::TempDir temp_{"tf_gtest_"};  // removed with the fixture
  std::filesystem::path dir_;
};

TEST_F(GtestFixtureTest, ListsEveryCase) {
  test::ChildResult ran = RunShell(Fixture("tf_gtest") + " --gtest_list_tests");
  ASSERT_TRUE(ExitedWith(ran, 0)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  auto cases = ParseGtestList(ran.out);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  EXPECT_EQ(Names(*cases),
            (std::vector<std::string>{
                "Basic.Passes", "Basic.AlsoPasses", "Basic.Fails", "Basic.Skipped", "Basic.Crashes",
                "Basic.Hangs", "Basic.DISABLED_Ignored", "Typed/0.ZeroIsFalse",
                "Typed/1.ZeroIsFalse", "Slow.TakesAMoment", "Small/Param.BelowThree/0",
                "Small/Param.BelowThree/1", "Small/Param.BelowThree/2"}));
  for (const GtestCase& c : *cases) EXPECT_EQ(c.disabled, c.name == "Basic.DISABLED_Ignored");
}

TEST_F(GtestFixtureTest, ReportsPassFailAndSkip) {
  test::ChildResult ran = RunCases("tf_gtest", {"Basic.Passes", "Basic.Fails", "Basic.Skipped"});
  EXPECT_TRUE(ExitedWith(ran, 1)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  auto results = ParseGtestJson(ReadJson(), ran.out);
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 3u);
  const auto& r = *results;
  EXPECT_EQ(r[0].name, "Basic.Passes");
  EXPECT_EQ(r[0].status, Status::kPassed);
  EXPECT_EQ(r[0].message, "");
  EXPECT_EQ(r[1].name, "Basic.Fails");
  EXPECT_EQ(r[1].status, Status::kFailed);
  EXPECT_NE(r[1].message.find("tf_gtest.cc:"), std::string::npos) << r[1].message;
  EXPECT_NE(r[1].message.find("tf_gtest: two plus two"), std::string::npos) << r[1].message;
  EXPECT_EQ(r[2].name, "Basic.Skipped");
  EXPECT_EQ(r[2].status, Status::kSkipped);
  EXPECT_EQ(r[2].message, "tf_gtest: not today");
  // Without the console, gtest 1.12's JSON alone has no skip message.
  auto json_only = ParseGtestJson(ReadJson());
  ASSERT_TRUE(json_only.ok()) << json_only.error().message;
  EXPECT_EQ((*json_only)[2].message, "");
}

TEST_F(GtestFixtureTest, TypedParameterizedAndSlowCases) {
  test::ChildResult ran = RunCases(
      "tf_gtest", {"Typed/0.ZeroIsFalse", "Typed/1.ZeroIsFalse", "Small/Param.BelowThree/0",
                   "Small/Param.BelowThree/1", "Small/Param.BelowThree/2", "Slow.TakesAMoment"});
  EXPECT_TRUE(ExitedWith(ran, 1)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  auto results = ParseGtestJson(ReadJson(), ran.out);
  ASSERT_TRUE(results.ok()) << results.error().message;
  std::vector<std::string> names;
  std::vector<std::string> failed;
  for (const GtestCaseResult& r : *results) {
    names.push_back(r.name);
    if (r.status == Status::kFailed) failed.push_back(r.name);
    if (r.name == "Slow.TakesAMoment") {
      EXPECT_GE(r.duration, std::chrono::milliseconds(50));
    }
    if (r.name == "Small/Param.BelowThree/2") {
      EXPECT_NE(r.message.find("tf_gtest: param too big"), std::string::npos) << r.message;
    }
  }
  // gtest reports in its registration order, not the filter's.
  EXPECT_EQ(names,
            (std::vector<std::string>{"Typed/0.ZeroIsFalse", "Typed/1.ZeroIsFalse",
                                      "Slow.TakesAMoment", "Small/Param.BelowThree/0",
                                      "Small/Param.BelowThree/1", "Small/Param.BelowThree/2"}));
  EXPECT_EQ(failed, std::vector<std::string>{"Small/Param.BelowThree/2"});
}

TEST_F(GtestFixtureTest, DisabledCaseInTheFilterDoesNotRun) {
  test::ChildResult ran = RunCases("tf_gtest", {"Basic.Passes", "Basic.DISABLED_Ignored"});
  EXPECT_TRUE(ExitedWith(ran, 0)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  auto results = ParseGtestJson(ReadJson());
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 1u);  // gtest lists it as NOTRUN
  EXPECT_EQ((*results)[0].name, "Basic.Passes");
}

TEST_F(GtestFixtureTest, CrashingCaseDiesOfSegvAndWritesNoReport) {
  test::ChildResult ran = RunCases("tf_gtest", {"Basic.Passes", "Basic.Crashes"});
  EXPECT_TRUE(DiedOf(ran, SIGSEGV)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  EXPECT_NE(ran.out.find("[ RUN      ] Basic.Crashes\n"), std::string::npos) << ran.out;
  EXPECT_FALSE(std::filesystem::exists(JsonPath()));  // gtest writes the JSON at the end
}

TEST_F(GtestFixtureTest, BatchOfPassingCases) {
  test::ChildResult listing = RunShell(Fixture("tf_gtest_pass") + " --gtest_list_tests");
  ASSERT_TRUE(ExitedWith(listing, 0))
      << listing.exit_code << " " << listing.signal << " " << listing.err;
  auto cases = ParseGtestList(listing.out);
  ASSERT_TRUE(cases.ok()) << cases.error().message;
  ASSERT_EQ(cases->size(), 20u);
  test::ChildResult ran = RunCases("tf_gtest_pass", Names(*cases));
  EXPECT_TRUE(ExitedWith(ran, 0)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  auto results = ParseGtestJson(ReadJson(), ran.out);
  ASSERT_TRUE(results.ok()) << results.error().message;
  ASSERT_EQ(results->size(), 20u);
  for (size_t i = 0; i < results->size(); ++i) {
    EXPECT_EQ((*results)[i].name, (*cases)[i].name);
    EXPECT_EQ((*results)[i].status, Status::kPassed) << (*results)[i].name;
  }
}

TEST_F(GtestFixtureTest, BinaryThatCrashesWhileListing) {
  test::ChildResult listing = RunShell(Fixture("tf_gtest_listing_crash") + " --gtest_list_tests");
  EXPECT_TRUE(DiedOf(listing, SIGSEGV))
      << listing.exit_code << " " << listing.signal << " " << listing.err;
  EXPECT_EQ(listing.out, "");
  test::ChildResult ran =
      RunCases("tf_gtest_listing_crash", {"Listing.Passes"});  // runs fine otherwise
  EXPECT_TRUE(ExitedWith(ran, 0)) << ran.exit_code << " " << ran.signal << " " << ran.err;
  EXPECT_TRUE(IsGtestBinary(Fixture("tf_gtest_listing_crash")));
}

TEST_F(GtestFixtureTest, RecognisesGtestBinaries) {
  EXPECT_TRUE(IsGtestBinary(Fixture("tf_gtest")));
  EXPECT_TRUE(IsGtestBinary(Fixture("tf_gtest_pass")));
  EXPECT_FALSE(IsGtestBinary(Fixture("tf_pass")));
  EXPECT_FALSE(IsGtestBinary(Fixture("tf_segv")));
  std::string script = (dir_ / "run_tests.sh").string();
  std::ofstream(script) << "#!/bin/sh\nexec " << Fixture("tf_gtest") << " --gtest_list_tests\n";
  ::chmod(script.c_str(), 0755);
  EXPECT_FALSE(IsGtestBinary(script));
  EXPECT_FALSE(IsGtestBinary(Fixture("no_such_fixture")));
}

}  // namespace
}  // namespace testfarm::coordinator
