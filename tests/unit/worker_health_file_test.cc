// The worker's health file: what it says, when it is rewritten, and that it goes at exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/support/temp_dir.h"
#include "worker/health_file.h"

namespace testfarm::worker {
namespace {

using std::chrono::milliseconds;

std::string Read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(HealthFile, SaysTheStateAndIsRewrittenOnChangeOrWhenDue) {
  test::TempDir dir;
  FakeClock clock;
  const std::filesystem::path file = dir.path() / "health";
  {
    HealthFile health(file, "tcp://farm:7700", milliseconds(1000));
    EXPECT_FALSE(health.NextRefresh().has_value());
    health.Set("connecting", clock.Now());
    EXPECT_EQ(Read(file), "connecting tcp://farm:7700\n");
    EXPECT_EQ(health.NextRefresh(), clock.Now() + milliseconds(1000));

    // Within the refresh interval the same state is not written again...
    std::filesystem::remove(file);
    clock.Advance(milliseconds(999));
    health.Set("connecting", clock.Now());
    EXPECT_FALSE(std::filesystem::exists(file));
    // ...but it is once due, so its age shows the loop is alive.
    clock.Advance(milliseconds(1));
    health.Set("connecting", clock.Now());
    EXPECT_EQ(Read(file), "connecting tcp://farm:7700\n");

    // A new state is written at once.
    clock.Advance(milliseconds(10));
    health.Set("connected", clock.Now());
    EXPECT_EQ(Read(file), "connected tcp://farm:7700\n");
    health.Set("draining", clock.Now());
    EXPECT_EQ(Read(file), "draining tcp://farm:7700\n");
    EXPECT_TRUE(health.error().empty());
    EXPECT_FALSE(std::filesystem::exists(dir.path() / "health.tmp")) << "renamed into place";
  }
  EXPECT_FALSE(std::filesystem::exists(file)) << "removed when the worker exits";
}

TEST(HealthFile, AnUnwritablePathIsAnErrorNotACrash) {
  test::TempDir dir;
  FakeClock clock;
  HealthFile health(dir.path() / "no-such-dir" / "health", "tcp://farm:7700", milliseconds(1000));
  health.Set("connecting", clock.Now());
  EXPECT_NE(health.error().find("no-such-dir"), std::string::npos) << health.error();
  std::filesystem::create_directory(dir.path() / "no-such-dir");
  clock.Advance(milliseconds(1000));
  health.Set("connecting", clock.Now());
  EXPECT_TRUE(health.error().empty()) << "it recovers once it can write";
  EXPECT_EQ(Read(dir.path() / "no-such-dir" / "health"), "connecting tcp://farm:7700\n");
}

}  // namespace
}  // namespace testfarm::worker
