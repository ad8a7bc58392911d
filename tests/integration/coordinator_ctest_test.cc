// CTest import against a real CMake build: the test writes a small CMake project (plain tests
// with every property ParseCtestJson honours, and a gtest_discover_tests target), configures and
// builds it, asks ctest for its json-v1 listing and checks what comes through.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/ctest_import.h"
#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"

extern char** environ;

namespace testfarm::coordinator {
namespace {

using testfarm::test::ChildOptions;
using testfarm::test::ChildResult;
using testfarm::test::RunChild;
using testfarm::test::TempDir;

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using namespace std::chrono_literals;

// A temporary directory, removed with everything in it.

// argv (searched in PATH, no shell) with `extra_env` on top of ours, in `cwd`, killed once
// `limit` passes.
ChildResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds limit,
                       const std::map<std::string, std::string>& extra_env = {},
                       const std::string& cwd = "") {
  ChildOptions options;
  options.deadline = limit;
  options.cwd = cwd;
  for (const auto& [name, value] : extra_env) options.extra_env.push_back(name + "=" + value);
  return RunChild(argv, options);
}

bool OnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && ::access((fs::path(dir) / program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

constexpr const char* kCMakeLists = R"(cmake_minimum_required(VERSION 3.16)
project(ctest_sample CXX)
enable_testing()
find_package(GTest REQUIRED)
include(GoogleTest)

add_executable(check_env check_env.cc)
add_test(NAME env_check COMMAND check_env "an arg")
set_tests_properties(env_check PROPERTIES
  WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/data
  ENVIRONMENT "SAMPLE_A=1;SAMPLE_B=x=y"
  TIMEOUT 2.5
  WILL_FAIL TRUE
  SKIP_RETURN_CODE 77
  LABELS "fast;env"
  RUN_SERIAL TRUE)
add_test(NAME switched_off COMMAND check_env)
set_tests_properties(switched_off PROPERTIES DISABLED TRUE TIMEOUT 0)
add_test(NAME never_built COMMAND testfarm_no_such_program_anywhere)

add_executable(sample_gtest sample_gtest.cc)
target_link_libraries(sample_gtest GTest::gtest_main)
gtest_discover_tests(sample_gtest PROPERTIES LABELS gt TIMEOUT 30)
)";

// Exits 3 unless it sees the argument, environment and working directory CTest was told about.
constexpr const char* kCheckEnv = R"(#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
int main(int argc, char** argv) {
  const char* a = std::getenv("SAMPLE_A");
  const char* b = std::getenv("SAMPLE_B");
  if (argc != 2 || std::strcmp(argv[1], "an arg") != 0) return 3;
  if (!a || std::strcmp(a, "1") != 0 || !b || std::strcmp(b, "x=y") != 0) return 3;
  if (!std::ifstream("marker.txt")) return 3;
  std::puts("check_env ok");
  return 0;
}
)";

constexpr const char* kSampleGtest = R"(#include <gtest/gtest.h>
TEST(MySuite, Works) { EXPECT_EQ(2 + 2, 4); }
TEST(MySuite, AlsoWorks) { EXPECT_TRUE(true); }
TEST(MySuite, DISABLED_Later) { FAIL(); }
)";

const SuiteSpec* Find(const std::vector<SuiteSpec>& suites, const std::string& name) {
  auto it = std::find_if(suites.begin(), suites.end(),
                         [&](const SuiteSpec& s) { return s.name == name; });
  return it == suites.end() ? nullptr : &*it;
}

TEST(CtestImportIntegration, RealCMakeBuild) {
  if (!OnPath("cmake") || !OnPath("ctest")) GTEST_SKIP() << "cmake/ctest not on PATH";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::path src = dir.path() / "src";
  fs::path build = dir.path() / "build";
  fs::create_directories(src / "data");
  WriteFile(src / "CMakeLists.txt", kCMakeLists);
  WriteFile(src / "check_env.cc", kCheckEnv);
  WriteFile(src / "sample_gtest.cc", kSampleGtest);
  WriteFile(src / "data" / "marker.txt", "here\n");

  std::vector<std::string> configure = {"cmake", "-S",           src.string(),
                                        "-B",    build.string(), "-DCMAKE_BUILD_TYPE=Release"};
  if (OnPath("ninja")) configure.insert(configure.end(), {"-G", "Ninja"});
  ChildResult configured = RunCommand(configure, 180s);
  ASSERT_EQ(configured.exit_code, 0) << configured.out << configured.err;
  ChildResult built = RunCommand({"cmake", "--build", build.string()}, 300s);
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;

  ChildResult listed = RunCommand(CtestListCommand(build.string()), 60s);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::string origin = "ctest " + build.string();
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(listed.out, origin, &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message << "\n" << listed.out;
  EXPECT_THAT(warnings, ::testing::IsEmpty())
      << "everything this project and gtest_discover_tests set is honoured";

  std::vector<std::string> names;
  for (const SuiteSpec& s : *suites) names.push_back(s.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("env_check", "switched_off", "never_built",
                                                     "MySuite.Works", "MySuite.AlsoWorks",
                                                     "MySuite.Later"));

  const SuiteSpec* env_check = Find(*suites, "env_check");
  ASSERT_NE(env_check, nullptr);
  EXPECT_THAT(env_check->command, ElementsAre((build / "check_env").string(), "an arg"));
  EXPECT_EQ(env_check->kind, SuiteKind::kPlain);
  EXPECT_EQ(env_check->cwd, (src / "data").string());
  EXPECT_THAT(env_check->env, ElementsAre(Pair("SAMPLE_A", "1"), Pair("SAMPLE_B", "x=y")));
  EXPECT_EQ(env_check->timeout, Millis(2500));
  EXPECT_TRUE(env_check->will_fail);
  EXPECT_EQ(env_check->skip_return_code, 77);
  EXPECT_THAT(env_check->labels, ElementsAre("env", "fast"));  // CTest sorts them
  EXPECT_TRUE(env_check->run_serial);
  EXPECT_FALSE(env_check->disabled);
  EXPECT_EQ(env_check->origin, origin + ": env_check");

  // The imported command, environment and working directory are what CTest would run.
  ChildResult ran = RunCommand(env_check->command, 30s, env_check->env, env_check->cwd);
  EXPECT_EQ(ran.exit_code, 0) << ran.err;
  EXPECT_EQ(ran.out, "check_env ok\n");

  const SuiteSpec* off = Find(*suites, "switched_off");
  ASSERT_NE(off, nullptr);
  EXPECT_TRUE(off->disabled);
  EXPECT_FALSE(off->timeout.has_value());
  EXPECT_FALSE(off->will_fail || off->run_serial || off->skip_return_code.has_value());

  const SuiteSpec* never_built = Find(*suites, "never_built");
  ASSERT_NE(never_built, nullptr);
  EXPECT_FALSE(never_built->disabled) << "a test that cannot run is no skip";
  EXPECT_TRUE(never_built->command.empty());
  EXPECT_THAT(never_built->cannot_run,
              HasSubstr("ctest could not find the command for this test (is it built?)"));
  EXPECT_THAT(never_built->cannot_run, HasSubstr((src / "CMakeLists.txt").string() + ":"))
      << "where add_test registered it";

  // gtest_discover_tests registers one CTest test per case.
  const SuiteSpec* works = Find(*suites, "MySuite.Works");
  ASSERT_NE(works, nullptr);
  ASSERT_FALSE(works->command.empty());
  EXPECT_EQ(works->command[0], (build / "sample_gtest").string());
  EXPECT_THAT(works->command, ::testing::Contains("--gtest_filter=MySuite.Works"));
  EXPECT_EQ(works->kind, SuiteKind::kPlain);
  EXPECT_EQ(works->timeout, Millis(30'000));
  EXPECT_THAT(works->labels, ElementsAre("gt"));
  EXPECT_FALSE(works->disabled);
  // gtest_discover_tests' way of telling a GTEST_SKIP: honoured.
  EXPECT_THAT(works->output_rules.skip, ElementsAre("\\[  SKIPPED \\]"));
  ChildResult case_run = RunCommand(works->command, 30s, works->env, works->cwd);
  EXPECT_EQ(case_run.exit_code, 0) << case_run.out << case_run.err;
  EXPECT_THAT(case_run.out, HasSubstr("[       OK ] MySuite.Works"));
  EXPECT_THAT(case_run.out, HasSubstr("1 test from 1 test suite ran"));

  // A DISABLED_ case comes through under its name without the prefix, with DISABLED set.
  const SuiteSpec* later = Find(*suites, "MySuite.Later");
  ASSERT_NE(later, nullptr);
  EXPECT_TRUE(later->disabled);
}

TEST(CtestImportIntegration, BuildDirWithoutTests) {
  if (!OnPath("cmake") || !OnPath("ctest")) GTEST_SKIP() << "cmake/ctest not on PATH";
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::path src = dir.path() / "src";
  fs::path build = dir.path() / "build";
  fs::create_directories(src);
  WriteFile(src / "CMakeLists.txt",
            "cmake_minimum_required(VERSION 3.16)\nproject(empty NONE)\nenable_testing()\n");
  ChildResult configured = RunCommand({"cmake", "-S", src.string(), "-B", build.string()}, 120s);
  ASSERT_EQ(configured.exit_code, 0) << configured.out << configured.err;
  ChildResult listed = RunCommand(CtestListCommand(build.string()), 60s);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(listed.out, "ctest build");
  ASSERT_FALSE(suites.ok());
  EXPECT_EQ(suites.error().message, "no tests registered in ctest build");
}

}  // namespace
}  // namespace testfarm::coordinator
