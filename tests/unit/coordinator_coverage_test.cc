#include <gtest/gtest.h>

#include <fstream>

#include "coordinator/coverage.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

using test::TempDir;

const char* kExport = R"({"type": "llvm.coverage.json.export", "version": "2.0.1", "data": [{
  "files": [{"filename": "/src/a.cc", "summary": {
     "lines": {"count": 10, "covered": 5}, "regions": {"count": 4, "covered": 4},
     "branches": {"count": 0, "covered": 0}}}],
  "totals": {"lines": {"count": 10, "covered": 5}, "regions": {"count": 4, "covered": 4},
             "branches": {"count": 0, "covered": 0}}}]})";

TEST(FormatCoverageSummary, OneRowPerFileAndTotals) {
  auto table = FormatCoverageSummary(kExport);
  ASSERT_TRUE(table) << table.error().message;
  EXPECT_NE(table->find("5/10  50.0%"), std::string::npos) << *table;
  EXPECT_NE(table->find("4/4 100.0%"), std::string::npos) << *table;
  EXPECT_NE(table->find("/src/a.cc"), std::string::npos) << *table;
  EXPECT_NE(table->find("TOTAL"), std::string::npos) << *table;
  EXPECT_FALSE(FormatCoverageSummary("not json"));
  EXPECT_FALSE(FormatCoverageSummary(R"({"data": []})"));
}

struct FakeTools {
  std::vector<std::vector<std::string>> calls;
  std::map<std::string, CommandResult> by_subcommand;  // "merge", "export", "show"
  CommandRunner Runner() {
    return [this](const std::vector<std::string>& argv, const std::string& stdout_file) {
      calls.push_back(argv);
      if (!stdout_file.empty()) std::ofstream(stdout_file) << kExport;
      auto it = by_subcommand.find(argv.at(1));
      return it == by_subcommand.end() ? CommandResult{true, "exit 0", ""} : it->second;
    };
  }
};

CoverageExport How(const TempDir& dir, const std::string& format = "json") {
  CoverageExport how;
  how.llvm_profdata = "/t/llvm-profdata";
  how.llvm_cov = "/t/llvm-cov";
  how.format = format;
  how.output = dir.path() / "coverage.json";
  how.work_dir = dir.path();
  return how;
}

TEST(ExportCoverage, MergesTheWorkersProfilesAndExportsOverEveryObject) {
  TempDir dir;
  FakeTools tools;
  CoverageSummary collected;
  collected.profiles = {"/p/worker-0.profdata", "/p/worker-1.profdata"};
  CoverageObjects objects{{"/b/test", "/b/lib/libx.so"}, {}};
  CoverageExport how = How(dir);
  how.summary = true;
  auto outcome = ExportCoverage(collected, objects, how, tools.Runner());
  ASSERT_TRUE(outcome) << outcome.error().message;
  ASSERT_EQ(tools.calls.size(), 2u);
  EXPECT_EQ(tools.calls[0],
            (std::vector<std::string>{"/t/llvm-profdata", "merge", "-sparse", "-o",
                                      (dir.path() / "run.profdata").string(),
                                      "/p/worker-0.profdata", "/p/worker-1.profdata"}));
  EXPECT_EQ(tools.calls[1],
            (std::vector<std::string>{"/t/llvm-cov", "export", "-format=text",
                                      "-instr-profile=" + (dir.path() / "run.profdata").string(),
                                      "/b/test", "-object", "/b/lib/libx.so"}));
  EXPECT_NE(outcome->summary.find("TOTAL"), std::string::npos);
}

TEST(ExportCoverage, LlvmCovWarningsAreSurfacedNotSwallowed) {
  // What llvm-cov says when a binary was rebuilt after its tests ran.
  TempDir dir;
  FakeTools tools;
  tools.by_subcommand["export"] = {true, "exit 0", "warning: 3 functions have mismatched data\n"};
  CoverageSummary collected;
  collected.profiles = {"/p/worker-0.profdata"};
  auto outcome = ExportCoverage(collected, {{"/b/test"}, {}}, How(dir, "lcov"), tools.Runner());
  ASSERT_TRUE(outcome) << outcome.error().message;
  ASSERT_EQ(outcome->warnings.size(), 1u);
  EXPECT_EQ(outcome->warnings[0], "llvm-cov: warning: 3 functions have mismatched data");
  EXPECT_EQ(tools.calls.size(), 1u) << "one profile needs no merge";
  EXPECT_EQ(tools.calls[0][2], "-format=lcov");
}

TEST(ExportCoverage, FailuresAndMissingInputsAreErrorsWithTheToolsWords) {
  TempDir dir;
  FakeTools tools;
  tools.by_subcommand["merge"] = {false, "exit 1", "error: /p/a.profdata: invalid profile\n"};
  CoverageSummary collected;
  collected.profiles = {"/p/a.profdata", "/p/b.profdata"};
  auto failed = ExportCoverage(collected, {{"/b/test"}, {}}, How(dir), tools.Runner());
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().message,
            "llvm-profdata merge failed (exit 1): error: /p/a.profdata: invalid profile");

  auto no_objects = ExportCoverage(collected, {{}, {"/b/plain"}}, How(dir), tools.Runner());
  ASSERT_FALSE(no_objects);
  EXPECT_NE(no_objects.error().message.find("no instrumented binary"), std::string::npos);
  auto no_profiles = ExportCoverage({}, {{"/b/test"}, {}}, How(dir), tools.Runner());
  ASSERT_FALSE(no_profiles);
  EXPECT_NE(no_profiles.error().message.find("no coverage profile"), std::string::npos);
}

TEST(ExportCoverage, HtmlIsLlvmCovShowIntoADirectory) {
  TempDir dir;
  FakeTools tools;
  CoverageSummary collected;
  collected.profiles = {"/p/w.profdata"};
  CoverageExport how = How(dir, "html");
  how.output = dir.path() / "html";
  ASSERT_TRUE(ExportCoverage(collected, {{"/b/test"}, {}}, how, tools.Runner()));
  ASSERT_EQ(tools.calls.size(), 1u);
  EXPECT_EQ(tools.calls[0][1], "show");
  EXPECT_EQ(tools.calls[0][2], "-format=html");
  EXPECT_EQ(tools.calls[0][3], "-output-dir=" + (dir.path() / "html").string());
}

}  // namespace
}  // namespace testfarm::coordinator
