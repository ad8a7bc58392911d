// RawProfileSum on the profiles real instrumented processes write: the GoogleTest fixture and its
// instrumented shared library each write a profile, end to end, into the process's file. Two
// processes' files are summed in memory, and llvm-profdata reads the sum as it reads the two.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "tests/support/child_process.h"
#include "tests/support/temp_dir.h"
#include "worker/raw_profile.h"

namespace testfarm::worker {
namespace {

namespace fs = std::filesystem;

const fs::path kCov = fs::path(TESTFARM_FIXTURE_DIR) / "cov";

std::string Tool(const std::string& name) {
  for (std::string candidate : {name, name + "-14", name + "-15", name + "-16", name + "-13"}) {
    if (fs::exists("/usr/bin/" + candidate)) return "/usr/bin/" + candidate;
  }
  return {};
}

std::string ReadBytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteBytes(const fs::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
}

// Runs the fixture with `filter`; the raw profile it wrote.
std::string ProfileOf(const fs::path& dir, const std::string& name, const std::string& filter) {
  fs::path file = dir / (name + ".profraw");
  test::ChildOptions options;
  options.extra_env.push_back("LLVM_PROFILE_FILE=" + file.string());
  test::ChildResult r =
      test::RunChild({(kCov / "tf_cov_gtest").string(), "--gtest_filter=" + filter}, options);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return ReadBytes(file);
}

// llvm-profdata's view of the merged `profiles`: every function's counters.
std::string Counts(const std::string& profdata, const fs::path& dir,
                   const std::vector<fs::path>& profiles, const std::string& name) {
  fs::path out = dir / (name + ".profdata");
  std::vector<std::string> merge = {profdata, "merge", "-sparse", "-o", out.string()};
  for (const fs::path& p : profiles) merge.push_back(p.string());
  test::ChildResult merged = test::RunChild(merge);
  EXPECT_EQ(merged.exit_code, 0) << merged.err;
  test::ChildResult shown =
      test::RunChild({profdata, "show", "--all-functions", "--counts", out.string()});
  EXPECT_EQ(shown.exit_code, 0) << shown.err;
  return shown.out;
}

TEST(RawProfileSumOfRealProfiles, AnExecutableAndItsInstrumentedLibraryAreSummedModuleByModule) {
  if (!TESTFARM_COVERAGE_FIXTURES) GTEST_SKIP() << "no clang++: coverage fixtures not built";
  std::string profdata = Tool("llvm-profdata");
  if (profdata.empty()) GTEST_SKIP() << "llvm-profdata not found";
  test::TempDir dir;
  std::string a = ProfileOf(dir.path(), "a", "*");
  std::string b = ProfileOf(dir.path(), "b", "Classify.*");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  const std::string magic = "\x81rforpl\xff";
  std::size_t modules = 0;
  for (auto at = a.find(magic); at != std::string::npos; at = a.find(magic, at + 1)) ++modules;
  EXPECT_EQ(modules, 2u) << "the executable's profile and its library's";

  RawProfileSum sum;
  ASSERT_TRUE(sum.Add(a)) << "a profile of two modules, end to end";
  ASSERT_TRUE(sum.Add(b)) << "another process of the same build";
  EXPECT_EQ(sum.count(), 2u);
  WriteBytes(dir.path() / "sum.profraw", sum.profile());

  std::string reference =
      Counts(profdata, dir.path(), {dir.path() / "a.profraw", dir.path() / "b.profraw"}, "ref");
  std::string summed = Counts(profdata, dir.path(), {dir.path() / "sum.profraw"}, "sum");
  EXPECT_FALSE(reference.empty());
  EXPECT_EQ(summed, reference);
  // Both modules' functions are there: the library's and the executable's.
  EXPECT_NE(summed.find("CollatzSteps"), std::string::npos) << summed;
  EXPECT_NE(summed.find("Classify_Negative_Test"), std::string::npos) << summed;
}

}  // namespace
}  // namespace testfarm::worker
