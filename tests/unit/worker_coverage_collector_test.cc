#include <gtest/gtest.h>

#include <fstream>

#include "tests/support/temp_dir.h"
#include "worker/coverage_collector.h"

namespace testfarm::worker {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// Writes the profile a process of the job would leave (`bytes` long).
void Leave(const std::string& profile_file, const std::string& pid, std::size_t bytes) {
  std::string path = profile_file;
  path.replace(path.find("%p"), 2, pid);
  std::ofstream(path) << std::string(bytes, 'x');
}

FinishedJob Merge(ExitState state, std::string err = "") {
  FinishedJob merge;
  merge.state = std::move(state);
  merge.err.text = std::move(err);
  return merge;
}

TEST(CoverageCollector, CountsKeptEmptyAndMissingProfiles) {
  TempDir dir;
  CoverageCollector collector({"/usr/bin/llvm-profdata", dir.path(), 64});
  auto file = collector.ProfileFileFor(1);
  ASSERT_TRUE(file) << file.error().message;
  EXPECT_TRUE(file->ends_with("/j1-%p.profraw")) << *file;
  Leave(*file, "100", 10);
  Leave(*file, "101", 10);
  Leave(*file, "102", 0);
  auto counts = collector.TakeJob(1, "t1", /*exited=*/true);
  EXPECT_EQ(counts.kept, 2u);
  EXPECT_EQ(counts.empty, 1u);

  // Killed with nothing written: one missing profile. Killed after the runtime created its
  // (empty) file: still one, not two.
  ASSERT_TRUE(collector.ProfileFileFor(2));
  EXPECT_EQ(collector.TakeJob(2, "t2", false).empty, 1u);
  auto killed = collector.ProfileFileFor(3);
  Leave(*killed, "7", 0);
  auto counts3 = collector.TakeJob(3, "t3", false);
  EXPECT_EQ(counts3.empty, 1u);
  EXPECT_EQ(counts3.kept, 0u);
  // Nothing of a job's is left behind under its name.
  for (const auto& entry : fs::directory_iterator(fs::path(*file).parent_path())) {
    EXPECT_FALSE(entry.path().filename().string().starts_with("j1-")) << entry.path();
  }
}

TEST(CoverageCollector, MergesInBatchesOneAtATimeAndFlushesTheRest) {
  TempDir dir;
  CoverageCollector collector({"/usr/bin/llvm-profdata", dir.path(), 2});
  for (uint64_t lease = 1; lease <= 3; ++lease) {
    auto file = collector.ProfileFileFor(lease);
    Leave(*file, "1", 8);
    collector.TakeJob(lease, "t" + std::to_string(lease), true);
  }
  auto first = collector.NextMerge(false);
  ASSERT_TRUE(first);
  EXPECT_EQ(first->argv[0], "/usr/bin/llvm-profdata");
  EXPECT_EQ(first->argv[1], "merge");
  EXPECT_NE(std::find(first->argv.begin(), first->argv.end(), "-sparse"), first->argv.end());
  EXPECT_NE(std::find(first->argv.begin(), first->argv.end(), "--failure-mode=all"),
            first->argv.end());
  EXPECT_EQ(first->argv.size(), 6u + 2u) << "a batch of two raw profiles";
  EXPECT_FALSE(collector.NextMerge(true)) << "one merge at a time";
  EXPECT_FALSE(collector.Idle());

  // The merge succeeds: its output becomes the merged profile, an input of the next merge.
  std::string out = first->argv[5];
  std::ofstream(out) << "indexed";
  collector.OnMergeFinished(Merge(ExitState::Exited(0)));
  EXPECT_EQ(collector.merged_count(), 2u);
  EXPECT_FALSE(collector.NextMerge(false)) << "one left: not a full batch";
  auto flush = collector.NextMerge(true);
  ASSERT_TRUE(flush);
  EXPECT_EQ(flush->argv[6], collector.merged().string());
  EXPECT_EQ(flush->argv.size(), 6u + 1u + 1u);

  // llvm-profdata names the input it could not use: counted, named with its test, skipped.
  std::string raw = flush->argv[7];
  std::ofstream(flush->argv[5]) << "indexed";
  collector.OnMergeFinished(
      Merge(ExitState::Exited(0), "warning: " + raw + ": invalid instrumentation profile data\n"));
  EXPECT_EQ(collector.merged_count(), 2u);
  ASSERT_EQ(collector.bad().size(), 1u);
  EXPECT_EQ(collector.bad()[0],
            "t3: " + fs::path(raw).filename().string() + ": invalid instrumentation profile data");
  EXPECT_TRUE(collector.Idle());
  EXPECT_FALSE(fs::exists(raw)) << "raw profiles go once merged";
}

TEST(CoverageCollector, AFailedMergeKeepsWhatWasMergedBefore) {
  TempDir dir;
  CoverageCollector collector({"/usr/bin/llvm-profdata", dir.path(), 1});
  auto file = collector.ProfileFileFor(1);
  Leave(*file, "1", 8);
  collector.TakeJob(1, "bad", true);
  auto merge = collector.NextMerge(false);
  ASSERT_TRUE(merge);
  collector.OnMergeFinished(Merge(ExitState::Exited(1), "error: no profile can be merged\n"));
  EXPECT_EQ(collector.merged_count(), 0u);
  EXPECT_TRUE(collector.merged().empty());
  ASSERT_EQ(collector.bad().size(), 1u);
  EXPECT_NE(collector.bad()[0].find("bad: raw-1.profraw: error: no profile can be merged"),
            std::string::npos)
      << collector.bad()[0];
}

TEST(CoverageCollector, WithoutTheToolItSaysSoInsteadOfMerging) {
  TempDir dir;
  CoverageCollector collector({"", dir.path(), 64});
  auto file = collector.ProfileFileFor(1);
  Leave(*file, "1", 8);
  collector.TakeJob(1, "t", true);
  EXPECT_FALSE(collector.NextMerge(true));
  EXPECT_TRUE(collector.Idle());
  EXPECT_NE(collector.error().find("llvm-profdata not found on this worker"), std::string::npos);
}

}  // namespace
}  // namespace testfarm::worker
