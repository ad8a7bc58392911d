#include <gtest/gtest.h>

#include <string>

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

TEST(WorkerRegistry, WakesBeforeAnyDeadlineDoNotLookAtEveryWorker) {
  FakeClock clock;
  WorkerRegistry registry(clock, LivenessOptions{milliseconds(1000), 3});
  for (int w = 0; w < 100; ++w) registry.Add("p" + std::to_string(w), "w", 16, {});
  // Workers `from` to 99 are heard from and sent to.
  auto busy_from = [&](int from) {
    for (int w = from; w < 100; ++w) {
      registry.Heard("p" + std::to_string(w));
      registry.Sent("p" + std::to_string(w));
    }
  };
  registry.CheckLiveness();
  const uint64_t scans = registry.liveness_scans();
  // A busy loop: a wake every millisecond, every worker heard from and sent to.
  for (int i = 0; i < 999; ++i) {
    clock.Advance(milliseconds(1));
    busy_from(0);
    WorkerRegistry::Check check = registry.CheckLiveness();
    EXPECT_TRUE(check.dead.empty() && check.heartbeat_due.empty()) << i;
  }
  EXPECT_EQ(registry.liveness_scans(), scans) << "no deadline was due in the first second";
  // At the bound (a second after the first look) they are looked at again, once, and the bound
  // moves to the earliest deadline now: a second after the last message.
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(registry.CheckLiveness().heartbeat_due.empty());
  EXPECT_EQ(registry.liveness_scans(), scans + 1);
  EXPECT_EQ(registry.NextDeadline(), clock.Now() + milliseconds(999));
  // Silence from one: it is still due its heartbeat and declared dead on time.
  for (int i = 0; i < 3; ++i) {
    clock.Advance(milliseconds(1000));
    busy_from(1);
    WorkerRegistry::Check check = registry.CheckLiveness();
    if (i < 2) {
      EXPECT_EQ(check.heartbeat_due, std::vector<std::string>{"p0"}) << i;
      EXPECT_TRUE(check.dead.empty()) << i;
      registry.Sent("p0");
    } else {
      EXPECT_EQ(check.dead, std::vector<std::string>{"p0"});
    }
  }
  registry.Remove("p0");
  for (int w = 1; w < 100; ++w) registry.Remove("p" + std::to_string(w));
  EXPECT_FALSE(registry.NextDeadline().has_value()) << "no worker, nothing to wait for";
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
