#include <gtest/gtest.h>

#include "coordinator/worker_registry.h"

namespace testfarm::coordinator {
namespace {

using std::chrono::milliseconds;

TEST(WorkerRegistry, NamesOutliveTheWorkers) {
  FakeClock clock;
  WorkerRegistry registry(clock, LivenessOptions{milliseconds(1000), 3});
  EXPECT_TRUE(registry.Add("p1", "alpha", 4, {{"gpu", "1"}}));
  EXPECT_FALSE(registry.Add("p1", "again", 1, {})) << "one join per peer";
  ASSERT_NE(registry.Find("p1"), nullptr);
  EXPECT_EQ(registry.Find("p1")->name, "alpha");
  EXPECT_EQ(registry.Find("p1")->slots, 4u);
  EXPECT_EQ(registry.Describe("p1"), "worker alpha");
  registry.Remove("p1");
  EXPECT_FALSE(registry.Contains("p1"));
  EXPECT_EQ(registry.NameOf("p1"), "alpha") << "messages about a lost worker still name it";
  EXPECT_EQ(registry.NameOf("p9"), "p9");
  EXPECT_EQ(registry.Describe("p9"), "a peer that has not joined");
}

TEST(WorkerRegistry, HeartbeatsAreDueAfterAnIntervalAndSilenceKillsAfterThree) {
  FakeClock clock;
  WorkerRegistry registry(clock, LivenessOptions{milliseconds(1000), 3});
  registry.Add("talker", "t", 1, {});
  registry.Add("mute", "m", 1, {});
  EXPECT_EQ(registry.NextDeadline(), clock.Now() + milliseconds(1000));
  WorkerRegistry::Check check;
  for (int i = 0; i < 3; ++i) {
    clock.Advance(milliseconds(1000));
    registry.Heard("talker");
    check = registry.CheckLiveness();
    if (i < 2) {
      EXPECT_TRUE(check.dead.empty()) << i;
      EXPECT_EQ(check.heartbeat_due.size(), 2u) << "nothing was sent to either";
      registry.Sent("talker");
      registry.Sent("mute");
    }
  }
  EXPECT_EQ(check.dead, std::vector<std::string>{"mute"});
  EXPECT_FALSE(check.suspended_for.has_value());
}

TEST(WorkerRegistry, AProcessThatDidNotRunBlamesNobody) {
  FakeClock clock;
  WorkerRegistry registry(clock, LivenessOptions{milliseconds(1000), 3});
  registry.Add("w", "w", 1, {});
  registry.CheckLiveness();
  clock.Advance(milliseconds(60000));
  WorkerRegistry::Check check = registry.CheckLiveness();
  EXPECT_TRUE(check.dead.empty());
  ASSERT_TRUE(check.suspended_for.has_value());
  EXPECT_EQ(*check.suspended_for, milliseconds(60000));
}

}  // namespace
}  // namespace testfarm::coordinator
