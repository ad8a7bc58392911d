#include <gtest/gtest.h>

#include <vector>

#include "coordinator/running_tests.h"

namespace testfarm::coordinator {
namespace {

using RunningLease = Scheduler::RunningLease;

SteadyTime At(long long ms) {
  return SteadyTime(std::chrono::hours(1)) + Millis(ms);
}

RunningLease Lease(LeaseId lease, JobId job, long long since_ms) {
  return RunningLease{lease, job, "w", At(since_ms)};
}

std::vector<LeaseId> Ids(const std::vector<RunningLease>& leases) {
  std::vector<LeaseId> ids;
  for (const RunningLease& lease : leases) ids.push_back(lease.lease);
  return ids;
}

Scheduler::RunningChanges Started(std::vector<RunningLease> leases) {
  return {std::move(leases), {}};
}

Scheduler::RunningChanges Ended(std::vector<LeaseId> leases) {
  return {{}, std::move(leases)};
}

TEST(RunningTests, SaysEachStartOnce) {
  RunningTests running(Millis(0));
  auto changes = running.Update(Started({Lease(1, 10, 0), Lease(2, 11, 0)}), At(0));
  EXPECT_EQ(Ids(changes.started), (std::vector<LeaseId>{1, 2}));
  changes = running.Update(Started({Lease(2, 11, 0), Lease(3, 12, 50)}), At(50));
  EXPECT_EQ(Ids(changes.started), (std::vector<LeaseId>{3})) << "lease 2 was said already";
  EXPECT_EQ(running.count(), 3u);
}

TEST(RunningTests, ALeaseThatStartedAndEndedBetweenCallsIsStillSaidToHaveStarted) {
  RunningTests running(Millis(100));
  auto changes = running.Update({{Lease(1, 10, 0)}, {1}}, At(5));
  EXPECT_EQ(Ids(changes.started), (std::vector<LeaseId>{1}));
  EXPECT_EQ(running.count(), 0u);
  EXPECT_FALSE(running.NextSlowDeadline());
}

TEST(RunningTests, WithoutAThresholdNothingIsSlowAndThereIsNoDeadline) {
  RunningTests running(Millis(0));
  running.Update(Started({Lease(1, 10, 0)}), At(0));
  EXPECT_TRUE(running.Update({}, At(3600000)).slow.empty());
  EXPECT_FALSE(running.NextSlowDeadline());
}

TEST(RunningTests, SlowOnceAtTheThresholdAndTheDeadlineSaysWhen) {
  RunningTests running(Millis(100));
  running.Update(Started({Lease(1, 10, 0), Lease(2, 11, 30)}), At(30));
  EXPECT_EQ(running.NextSlowDeadline(), At(100));
  EXPECT_TRUE(running.Update({}, At(99)).slow.empty());
  auto changes = running.Update({}, At(100));
  EXPECT_EQ(Ids(changes.slow), (std::vector<LeaseId>{1}));
  EXPECT_EQ(running.NextSlowDeadline(), At(130));
  changes = running.Update({}, At(500));
  EXPECT_EQ(Ids(changes.slow), (std::vector<LeaseId>{2})) << "lease 1 was already said";
  EXPECT_FALSE(running.NextSlowDeadline()) << "everyone running is already slow";
}

TEST(RunningTests, FinishedLeasesAreForgottenAndARetryIsANewStart) {
  RunningTests running(Millis(100));
  running.Update(Started({Lease(1, 10, 0)}), At(0));
  running.Update({}, At(100));  // slow, said
  // Its worker was lost; the job runs again under a new lease.
  auto changes = running.Update({{Lease(7, 10, 150)}, {1}}, At(150));
  EXPECT_EQ(Ids(changes.started), (std::vector<LeaseId>{7}));
  EXPECT_EQ(running.count(), 1u);
  EXPECT_EQ(running.NextSlowDeadline(), At(250));
  EXPECT_EQ(Ids(running.Update({}, At(250)).slow), (std::vector<LeaseId>{7}));
  running.Update(Ended({7, 99}), At(300));  // 99: never known, ignored
  EXPECT_EQ(running.count(), 0u);
  EXPECT_FALSE(running.Longest());
}

TEST(RunningTests, LongestIsTheEarliestStart) {
  RunningTests running(Millis(0));
  running.Update(Started({Lease(3, 12, 20), Lease(1, 10, 40), Lease(2, 11, 10)}), At(50));
  ASSERT_TRUE(running.Longest());
  EXPECT_EQ(running.Longest()->lease, 2u);
  EXPECT_EQ(running.Longest()->job, 11u);
  running.Update(Ended({2}), At(60));
  EXPECT_EQ(running.Longest()->lease, 3u);
}

}  // namespace
}  // namespace testfarm::coordinator
