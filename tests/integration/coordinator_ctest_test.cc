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
#include "tests/support/temp_dir.h"

extern char** environ;

namespace testfarm::coordinator {
namespace {

using testfarm::test::TempDir;

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using namespace std::chrono_literals;

// A temporary directory, removed with everything in it.

struct RunResult {
  int exit_code = -1;  // -1: did not exit normally (killed, timed out, not started)
  bool timed_out = false;
  std::string out;  // stdout
  std::string err;  // stderr
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs argv (searched in PATH, no shell) in its own process group, stdout captured, stderr
// through a file; the group is killed once `limit` passes.
RunResult RunCommand(const std::vector<std::string>& argv, const fs::path& scratch,
                     std::chrono::seconds limit,
                     const std::map<std::string, std::string>& extra_env = {},
                     const std::string& cwd = "") {
  RunResult result;
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry(*e);
    if (!extra_env.contains(entry.substr(0, entry.find('=')))) env_strings.push_back(entry);
  }
  for (const auto& [name, value] : extra_env) env_strings.push_back(name + "=" + value);
  std::vector<char*> envp;
  for (std::string& entry : env_strings) envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> c_argv;
  for (std::string& arg : args) c_argv.push_back(arg.data());
  c_argv.push_back(nullptr);

  int out_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  std::string err_path = (scratch / "stderr.txt").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  pid_t pid = -1;
  int spawn_error = ::posix_spawnp(&pid, c_argv[0], &actions, &attr, c_argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(out_pipe[1]);
  if (spawn_error != 0) {
    ::close(out_pipe[0]);
    result.err = std::string("spawn failed: ") + std::strerror(spawn_error);
    return result;
  }

  auto deadline = std::chrono::steady_clock::now() + limit;
  char buffer[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    ssize_t n = ::read(out_pipe[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && !result.timed_out) result.exit_code = WEXITSTATUS(status);
  result.err += ReadFile(err_path);
  return result;
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
  RunResult configured = RunCommand(configure, dir.path(), 180s);
  ASSERT_EQ(configured.exit_code, 0) << configured.out << configured.err;
  RunResult built = RunCommand({"cmake", "--build", build.string()}, dir.path(), 300s);
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;

  RunResult listed = RunCommand(CtestListCommand(build.string()), dir.path(), 60s);
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
  RunResult ran = RunCommand(env_check->command, dir.path(), 30s, env_check->env, env_check->cwd);
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
  RunResult case_run = RunCommand(works->command, dir.path(), 30s, works->env, works->cwd);
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
  RunResult configured =
      RunCommand({"cmake", "-S", src.string(), "-B", build.string()}, dir.path(), 120s);
  ASSERT_EQ(configured.exit_code, 0) << configured.out << configured.err;
  RunResult listed = RunCommand(CtestListCommand(build.string()), dir.path(), 60s);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  Result<std::vector<SuiteSpec>> suites = ParseCtestJson(listed.out, "ctest build");
  ASSERT_FALSE(suites.ok());
  EXPECT_EQ(suites.error().message, "no tests registered in ctest build");
}

}  // namespace
}  // namespace testfarm::coordinator
