// End to end for --coverage: the coverage.json of a testfarm run must equal, number for number,
// the export of a reference made by running the same tests one at a time and merging their
// profiles with llvm-profdata and llvm-cov directly — on one node at any parallelism, in batch
// mode, and with remote workers running shipped copies of the binaries.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::milliseconds;

std::string Tool(const std::string& name) {
  for (std::string candidate : {name, name + "-14", name + "-15", name + "-16", name + "-13"}) {
    for (const char* dir : {"/usr/bin/", "/usr/local/bin/"}) {
      if (fs::exists(dir + candidate)) return dir + candidate;
    }
  }
  return {};
}

ChildOptions WithEnv(std::string variable) {
  ChildOptions options;
  options.extra_env.push_back(std::move(variable));
  return options;
}

std::string Gtest() {
  return Fixture("cov/tf_cov_gtest");
}
std::string Plain() {
  return Fixture("cov/tf_cov_plain");
}
std::string Library() {
  return Fixture("cov/lib/libtf_cov.so");
}

class E2ECoverage : public ::testing::Test {
 protected:
  void SetUp() override {
#if !TESTFARM_COVERAGE_FIXTURES
    GTEST_SKIP() << "the instrumented fixtures were not built (no clang++)";
#endif
    if (Tool("llvm-profdata").empty() || Tool("llvm-cov").empty()) {
      GTEST_SKIP() << "llvm-profdata or llvm-cov not found";
    }
  }

  ChildResult Testfarm(std::vector<std::string> args, ChildOptions options = {}) {
    args.insert(args.begin(), TESTFARM_BINARY);
    return RunChild(args, options);
  }

  // The gtest cases of the instrumented binary, by asking it.
  std::vector<std::string> Cases() {
    ChildResult r =
        RunChild({Gtest(), "--gtest_list_tests"}, WithEnv("LLVM_PROFILE_FILE=/dev/null"));
    std::vector<std::string> cases;
    std::istringstream lines(r.out);
    std::string suite;
    for (std::string line; std::getline(lines, line);) {
      if (line.empty()) continue;
      if (line[0] != ' ') {
        suite = line.substr(0, line.find(' '));
      } else {
        cases.push_back(suite + line.substr(2, line.find(' ', 2) - 2));
      }
    }
    return cases;
  }

  // Runs each command alone, one after another, each process writing its own raw profile, and
  // exports the merge with the tools directly: what testfarm's numbers must equal.
  json Reference(const std::vector<std::vector<std::string>>& runs) {
    fs::path profiles = dir_.path() / "reference";
    fs::create_directories(profiles);
    for (const auto& argv : runs) {
      ChildResult r =
          RunChild(argv, WithEnv("LLVM_PROFILE_FILE=" + (profiles / "%p.profraw").string()));
      EXPECT_EQ(r.exit_code, 0) << argv[0] << r.err;
    }
    std::vector<std::string> merge = {Tool("llvm-profdata"), "merge", "-sparse", "-o",
                                      (dir_.path() / "reference.profdata").string()};
    for (const auto& entry : fs::directory_iterator(profiles)) merge.push_back(entry.path());
    ChildResult merged = RunChild(merge);
    EXPECT_EQ(merged.exit_code, 0) << merged.err;
    ChildResult exported =
        RunChild({Tool("llvm-cov"), "export", "-format=text",
                  "-instr-profile=" + (dir_.path() / "reference.profdata").string(), Gtest(),
                  "-object", Library(), "-object", Plain()});
    EXPECT_EQ(exported.exit_code, 0) << exported.err;
    fs::remove_all(profiles);
    return json::parse(exported.out);
  }

  json GtestAndPlainReference() {
    std::vector<std::vector<std::string>> runs;
    for (const std::string& c : Cases()) runs.push_back({Gtest(), "--gtest_filter=" + c});
    runs.push_back({Plain()});
    return Reference(runs);
  }

  // Totals and every file's summary (line, region, branch, function counts) must be equal.
  void ExpectSameCoverage(const fs::path& produced, const json& reference,
                          const std::string& what) {
    std::ifstream in(produced);
    ASSERT_TRUE(in) << what << ": no " << produced;
    json ours = json::parse(in);
    ASSERT_EQ(ours.value("type", ""), "llvm.coverage.json.export") << what;
    const json& a = ours["data"][0];
    const json& b = reference["data"][0];
    EXPECT_EQ(a["totals"], b["totals"]) << what;
    std::map<std::string, json> files_a;
    std::map<std::string, json> files_b;
    for (const json& f : a["files"]) files_a[f["filename"]] = f["summary"];
    for (const json& f : b["files"]) files_b[f["filename"]] = f["summary"];
    EXPECT_EQ(files_a, files_b) << what;
    EXPECT_GE(files_a.size(), 3u) << what << ": the library, the gtest and the plain sources";
  }

  TempDir dir_;
};

TEST_F(E2ECoverage, OneNodeAtEveryParallelismMatchesTheReference) {
  json reference = GtestAndPlainReference();
  for (const char* jobs : {"1", "2", "4", "8"}) {
    fs::path out = dir_.path() / ("coverage-j" + std::string(jobs) + ".json");
    ChildResult r = Testfarm({"run", "-j", jobs, "--coverage=" + out.string(), Gtest(), Plain()});
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("13 passed, 0 failed"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("13 profiles merged, 0 empty, 0 corrupt"), std::string::npos) << r.out;
    ExpectSameCoverage(out, reference, std::string("-j ") + jobs);
  }
}

TEST_F(E2ECoverage, BatchModeMatchesTheReference) {
  json reference = GtestAndPlainReference();
  fs::path out = dir_.path() / "coverage.json";
  ChildResult r = Testfarm({"run", "-j", "2", "--isolation", "batch", "--batch-target", "1ms",
                            "--coverage=" + out.string(), Gtest(), Plain()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  ExpectSameCoverage(out, reference, "batch");
}

TEST_F(E2ECoverage, ThreeRemoteWorkersWithShippedBinariesMatchTheReference) {
  json reference = GtestAndPlainReference();
  fs::path out = dir_.path() / "coverage.json";
  std::string endpoint;
  auto coordinator =
      StartCoordinator({"--local-slots", "0", "--min-workers", "3", "--coverage=" + out.string(),
                        "--coverage-summary", Gtest(), Plain()},
                       &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (const char* name : {"a", "b", "c"}) {
    workers.push_back(StartWorker(endpoint, name, {"--slots", "2"}));
  }
  ChildResult r = coordinator->Finish(milliseconds(60000));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("13 profiles merged, 0 empty, 0 corrupt"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("TOTAL"), std::string::npos) << "--coverage-summary:\n" << r.out;
  ExpectSameCoverage(out, reference, "three workers");
  for (auto& w : workers) EXPECT_EQ(w->Finish(milliseconds(20000)).exit_code, 0);
}

TEST_F(E2ECoverage, TwoRunsOnAFarmAtOnceEachGetTheirOwnCoverage) {
  json reference = GtestAndPlainReference();
  std::string endpoint;
  auto farm = StartFarm(dir_, {}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << farm->out();
  std::vector<std::unique_ptr<BackgroundChild>> workers;
  for (const char* name : {"a", "b"}) {
    workers.push_back(std::make_unique<BackgroundChild>(
        std::vector<std::string>{TESTFARM_BINARY, "worker", "--connect", endpoint, "--name", name,
                                 "--slots", "2", "--cache-dir", WorkerCacheDir()}));
  }
  // The same tests in both runs, on the same workers at the same time: each run's profiles
  // must stay its own (a mix-up would double the counts of one and empty the other).
  std::vector<std::unique_ptr<BackgroundChild>> clients;
  for (const char* run : {"one", "two"}) {
    clients.push_back(std::make_unique<BackgroundChild>(std::vector<std::string>{
        TESTFARM_BINARY, "run", "--farm", endpoint,
        "--coverage=" + (dir_.path() / (std::string(run) + ".json")).string(), Gtest(), Plain()}));
  }
  for (std::size_t i = 0; i < clients.size(); ++i) {
    ChildResult r = clients[i]->Finish(milliseconds(60000));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("13 profiles merged, 0 empty, 0 corrupt"), std::string::npos) << r.out;
  }
  ExpectSameCoverage(dir_.path() / "one.json", reference, "the first farm run");
  ExpectSameCoverage(dir_.path() / "two.json", reference, "the second farm run");
}

TEST_F(E2ECoverage, ATimedOutTestLeavesTheOthersCoverageIntactAndIsReportedEmpty) {
  json reference = GtestAndPlainReference();
  fs::path manifest = dir_.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\nname = \"gtest\"\ncommand = \"" << Gtest() << "\"\n\n"
                          << "[[suite]]\nname = \"plain\"\ncommand = \"" << Plain() << "\"\n\n"
                          << "[[suite]]\nname = \"hang\"\ncommand = \"" << Plain()
                          << "\"\nargs = [\"hang\"]\ntimeout = \"300ms\"\n";
  fs::path out = dir_.path() / "coverage.json";
  ChildResult r = Testfarm({"run", "-j", "4", "--kill-grace", "100ms", "--manifest",
                            manifest.string(), "--coverage=" + out.string()});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("13 passed, 1 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("coverage: no profile from hang (timed out"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("13 profiles merged, 1 empty, 0 corrupt"), std::string::npos) << r.out;
  ExpectSameCoverage(out, reference, "with a timed-out test");
}

TEST_F(E2ECoverage, BadInputIsNamedAndTheRunGoesOn) {
  // A test that leaves a corrupt raw profile: named, skipped, counted; the rest is merged.
  fs::path manifest = dir_.path() / "testfarm.toml";
  std::ofstream(manifest)
      << "[[suite]]\nname = \"corrupt\"\ncommand = \"/bin/sh\"\n"
      << "args = [\"-c\", \"f=$(echo \\\"$LLVM_PROFILE_FILE\\\" | sed s/%p/$$/); "
      << "echo garbage > \\\"$f\\\"\"]\n\n"
      << "[[suite]]\nname = \"plain\"\ncommand = \"" << Plain() << "\"\n\n"
      << "[[suite]]\nname = \"uninstrumented\"\ncommand = \""
      << Fixture("cov/tf_cov_uninstrumented") << "\"\n";
  fs::path out = dir_.path() / "coverage.lcov";
  ChildResult r = Testfarm({"run", "--manifest", manifest.string(), "--coverage=" + out.string(),
                            "--coverage-format", "lcov"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("3 passed, 0 failed"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("--coverage: " + Fixture("cov/tf_cov_uninstrumented") +
                       " has no coverage mapping"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("corrupt profile skipped: local: corrupt: raw-"), std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("1 profiles merged, 0 empty, 1 corrupt"), std::string::npos) << r.out;
  std::ifstream lcov(out);
  std::stringstream text;
  text << lcov.rdbuf();
  EXPECT_NE(text.str().find("SF:"), std::string::npos) << "an lcov tracefile";

  // Missing tools are an error before any test runs.
  ChildResult no_tool =
      Testfarm({"run", "--coverage", "--llvm-profdata", "/nonexistent/llvm-profdata", Plain()});
  EXPECT_EQ(no_tool.exit_code, 2) << no_tool.out << no_tool.err;
  EXPECT_NE(no_tool.err.find("--llvm-profdata: '/nonexistent/llvm-profdata' is not an executable"),
            std::string::npos)
      << no_tool.err;
  EXPECT_EQ(no_tool.out.find("PASS"), std::string::npos) << "no test ran";
  ChildResult not_on_path = Testfarm({"run", "--coverage", Plain()}, WithEnv("PATH=/nonexistent"));
  EXPECT_EQ(not_on_path.exit_code, 2) << not_on_path.err;
  EXPECT_NE(not_on_path.err.find("llvm-profdata not found"), std::string::npos) << not_on_path.err;
}

TEST_F(E2ECoverage, ABinaryRebuiltBeforeTheExportIsSaidByLlvmCov) {
  // The test binary is replaced (as a rebuild would) after it ran and before the export.
  fs::create_directories(dir_.path() / "bin" / "lib");
  fs::copy_file(Plain(), dir_.path() / "bin" / "t");
  fs::copy_file(Library(), dir_.path() / "bin" / "lib" / "libtf_cov.so");
  fs::path manifest = dir_.path() / "testfarm.toml";
  std::ofstream(manifest) << "[[suite]]\nname = \"run\"\ncommand = \"bin/t\"\n\n"
                          << "[[suite]]\nname = \"rebuild\"\ncommand = \"/bin/cp\"\n"
                          << "args = [\"" << Fixture("cov/tf_cov_rebuilt") << "\", \""
                          << (dir_.path() / "bin" / "t").string() << "\"]\n";
  fs::path out = dir_.path() / "coverage.json";
  // One slot: the suites run in manifest order.
  ChildResult r =
      Testfarm({"run", "-j", "1", "--manifest", manifest.string(), "--coverage=" + out.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("testfarm: coverage: llvm-cov: warning:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("mismatched data"), std::string::npos) << r.err;
  EXPECT_TRUE(fs::exists(out));
}

}  // namespace
}  // namespace testfarm::test
