#include <gtest/gtest.h>

#include "coordinator/scheduler.h"

namespace testfarm::coordinator {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<AssignAction> Assigns(const std::vector<Action>& actions) {
  std::vector<AssignAction> out;
  for (const Action& a : actions)
    if (auto* assign = std::get_if<AssignAction>(&a)) out.push_back(*assign);
  return out;
}

std::vector<CancelAction> Cancels(const std::vector<Action>& actions) {
  std::vector<CancelAction> out;
  for (const Action& a : actions)
    if (auto* cancel = std::get_if<CancelAction>(&a)) out.push_back(*cancel);
  return out;
}

SchedulerOptions Options(unsigned prefetch = 0, unsigned max_failures = 0) {
  SchedulerOptions options;
  options.prefetch = prefetch;
  options.max_failures = max_failures;
  options.kill_grace = seconds(2);
  options.lease_slack = seconds(10);
  return options;
}

TEST(Scheduler, GivesJobsOnlyToFreeSlotsPlusPrefetch) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(10, Millis(0)));
  s.AddWorker("w1", 2);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 3u);  // 2 slots + 1 prefetch
  EXPECT_EQ(first[0].job, 0u);
  EXPECT_EQ(first[2].job, 2u);
  s.Dispatch();
  EXPECT_TRUE(s.TakeActions().empty()) << "no credit left";

  ASSERT_TRUE(s.OnResult("w1", first[0].lease, Verdict::kPassed));
  s.Dispatch();
  auto next = Assigns(s.TakeActions());
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].job, 3u);
  EXPECT_EQ(s.state(0), JobState::kPassed);
  EXPECT_EQ(s.state(3), JobState::kLeased);
}

TEST(Scheduler, SpreadsWorkAcrossWorkersAndFinishes) {
  FakeClock clock;
  Scheduler s(clock, Options(), std::vector<Millis>(4, Millis(0)));
  s.AddWorker("a", 1);
  s.AddWorker("b", 1);
  while (!s.Done()) {
    s.Dispatch();
    auto assigns = Assigns(s.TakeActions());
    ASSERT_FALSE(assigns.empty());
    for (const auto& a : assigns) ASSERT_TRUE(s.OnResult(a.worker, a.lease, Verdict::kPassed));
  }
  for (JobId j = 0; j < 4; ++j) EXPECT_EQ(s.state(j), JobState::kPassed);
  EXPECT_EQ(s.failures(), 0u);
}

TEST(Scheduler, DropsResultsForUnknownLeasesAndWrongWorkers) {
  FakeClock clock;
  Scheduler s(clock, Options(), std::vector<Millis>(1, Millis(0)));
  s.AddWorker("a", 1);
  s.AddWorker("b", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 1u);
  std::string other = assigns[0].worker == "a" ? "b" : "a";
  EXPECT_FALSE(s.OnResult(other, assigns[0].lease, Verdict::kPassed));
  EXPECT_FALSE(s.OnResult(assigns[0].worker, 999, Verdict::kPassed));
  EXPECT_TRUE(s.OnResult(assigns[0].worker, assigns[0].lease, Verdict::kFailed));
  EXPECT_FALSE(s.OnResult(assigns[0].worker, assigns[0].lease, Verdict::kPassed))
      << "a lease is reported once";
  EXPECT_EQ(s.state(0), JobState::kFailed);
  EXPECT_TRUE(s.Done());
}

TEST(Scheduler, RunningLeaseExpiresAfterTimeoutPlusGracePlusSlack) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(seconds(5))});
  s.AddWorker("w", 1);
  s.Dispatch();
  auto assign = Assigns(s.TakeActions()).at(0);
  ASSERT_TRUE(s.NextDeadline().has_value());
  EXPECT_EQ(*s.NextDeadline() - clock.Now(), seconds(5 + 2 + 10));

  clock.Advance(seconds(16));
  EXPECT_TRUE(s.OnTimers().empty());
  clock.Advance(seconds(1));
  auto expired = s.OnTimers();
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(s.state(0), JobState::kExpired);
  auto cancels = Cancels(s.TakeActions());
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].lease, assign.lease);
  EXPECT_FALSE(s.OnResult("w", assign.lease, Verdict::kPassed)) << "late result is dropped";
  EXPECT_TRUE(s.Done());
}

TEST(Scheduler, AWorkerStillFetchingFilesDoesNotSpendItsTestsTimeouts) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(seconds(5)), Millis(0)});
  s.AddWorker("w", 2);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  // 20 s of fetching (the deadline was 17 s): each fetch request pushes it back.
  for (int i = 0; i < 20; ++i) {
    clock.Advance(seconds(1));
    s.StillPreparing("w");
    EXPECT_TRUE(s.OnTimers().empty()) << "second " << i + 1;
  }
  EXPECT_EQ(*s.NextDeadline() - clock.Now(), seconds(5 + 2 + 10)) << "counted from the last fetch";
  s.StillPreparing("nobody");  // an unknown worker changes nothing
  clock.Advance(seconds(17));
  auto expired = s.OnTimers();
  ASSERT_EQ(expired.size(), 1u) << "then the test's own timeout applies";
  EXPECT_EQ(s.state(0), JobState::kExpired);
}

TEST(Scheduler, PrefetchedLeaseClockStartsWhenItReachesASlot) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), {Millis(seconds(5)), Millis(seconds(5))});
  s.AddWorker("w", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  clock.Advance(seconds(15));
  ASSERT_TRUE(s.OnResult("w", assigns[0].lease, Verdict::kPassed));
  // Job 1 waited 15 s behind job 0; its 17 s allowance starts now, not at assignment.
  clock.Advance(seconds(16));
  EXPECT_TRUE(s.OnTimers().empty());
  clock.Advance(seconds(2));
  EXPECT_EQ(s.OnTimers().size(), 1u);
}

TEST(Scheduler, NoTimeoutMeansNoDeadline) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(0)});
  s.AddWorker("w", 1);
  s.Dispatch();
  EXPECT_FALSE(s.NextDeadline().has_value());
  clock.Advance(std::chrono::hours(48));
  EXPECT_TRUE(s.OnTimers().empty());
}

TEST(Scheduler, FailFastCancelsRunningAndStartsNoMore) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/0, /*max_failures=*/1),
              std::vector<Millis>(6, Millis(0)));
  s.AddWorker("w", 3);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 3u);
  ASSERT_TRUE(s.OnResult("w", assigns[1].lease, Verdict::kFailed));
  EXPECT_FALSE(s.stopped()) << "failures are counted by RecordFailures, per test";
  s.RecordFailures(1);
  EXPECT_TRUE(s.stopped());
  EXPECT_EQ(s.stop_reason(), "fail-fast");
  auto cancels = Cancels(s.TakeActions());
  ASSERT_EQ(cancels.size(), 2u);
  s.Dispatch();
  EXPECT_TRUE(s.TakeActions().empty()) << "nothing dispatched after stop";
  EXPECT_FALSE(s.Done()) << "waits for the cancelled jobs to report";
  ASSERT_TRUE(s.OnResult("w", assigns[0].lease, Verdict::kCancelled));
  ASSERT_TRUE(s.OnResult("w", assigns[2].lease, Verdict::kPassed));  // finished before the cancel
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.state(0), JobState::kCancelled);
  EXPECT_EQ(s.state(2), JobState::kPassed);
  for (JobId j = 3; j < 6; ++j) EXPECT_EQ(s.state(j), JobState::kNotRun);
}

TEST(Scheduler, MaxFailStopsAtTheNthFailure) {
  FakeClock clock;
  Scheduler s(clock, Options(0, /*max_failures=*/2), std::vector<Millis>(5, Millis(0)));
  s.AddWorker("w", 1);
  for (int i = 0; i < 2; ++i) {
    s.Dispatch();
    auto a = Assigns(s.TakeActions()).at(0);
    ASSERT_TRUE(s.OnResult("w", a.lease, Verdict::kFailed));
    s.RecordFailures(1);
    EXPECT_EQ(s.stopped(), i == 1);
  }
  EXPECT_EQ(s.stop_reason(), "max-fail reached");
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.state(4), JobState::kNotRun);
}

TEST(Scheduler, StopIsIdempotentAndAbandonCancelsOutstanding) {
  FakeClock clock;
  Scheduler s(clock, Options(), std::vector<Millis>(3, Millis(0)));
  s.AddWorker("w", 2);
  s.Dispatch();
  s.TakeActions();
  s.Stop("interrupted");
  s.Stop("again");
  EXPECT_EQ(s.stop_reason(), "interrupted");
  EXPECT_EQ(Cancels(s.TakeActions()).size(), 2u);
  auto abandoned = s.AbandonOutstanding();
  EXPECT_EQ(abandoned.size(), 2u);
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.state(0), JobState::kCancelled);
  EXPECT_EQ(s.state(2), JobState::kNotRun);
}

TEST(Scheduler, JobsAddedLaterAreDispatchedRerunsFirst) {
  FakeClock clock;
  Scheduler s(clock, Options());
  s.AddWorker("w", 1);
  EXPECT_EQ(s.WantedJobs(), 1u);
  JobId a = s.AddJob(Millis(0));
  JobId b = s.AddJob(Millis(0));
  JobId rerun = s.AddJob(Millis(0), /*serial=*/false, /*front=*/true);
  EXPECT_EQ(s.WantedJobs(), 0u);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].job, rerun);
  ASSERT_TRUE(s.OnResult("w", first[0].lease, Verdict::kPassed));
  s.Dispatch();
  EXPECT_EQ(Assigns(s.TakeActions()).at(0).job, a);
  EXPECT_NE(a, b);
}

TEST(Scheduler, ASerialJobRunsAloneOnItsWorker) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/2));
  JobId before = s.AddJob(Millis(0));
  JobId serial = s.AddJob(Millis(0), /*serial=*/true);
  JobId after = s.AddJob(Millis(0));
  s.AddWorker("w", 4);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  // The serial job may not join a busy worker; the others go ahead of it.
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].job, before);
  EXPECT_EQ(first[1].job, after);
  for (const auto& a : first) ASSERT_TRUE(s.OnResult("w", a.lease, Verdict::kPassed));
  s.AddJob(Millis(0));
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u) << "nothing else while the serial job holds the worker";
  EXPECT_EQ(second[0].job, serial);
  ASSERT_TRUE(s.OnResult("w", second[0].lease, Verdict::kPassed));
  s.Dispatch();
  EXPECT_EQ(Assigns(s.TakeActions()).size(), 1u);
}

TEST(Scheduler, AJobThatLostTwoWorkersIsQuarantined) {
  FakeClock clock;
  Scheduler s(clock, Options(), std::vector<Millis>(2, Millis(0)));
  s.AddWorker("a", 1);
  s.AddWorker("b", 1);
  s.AddWorker("c", 1);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  JobId killer = first[0].job;
  ASSERT_TRUE(s.RemoveWorker(first[0].worker, /*lost=*/true).quarantined.empty());
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].job, killer) << "requeued at the front";
  auto removal = s.RemoveWorker(second[0].worker, /*lost=*/true);
  EXPECT_EQ(removal.quarantined, std::vector<JobId>{killer});
  EXPECT_EQ(s.state(killer), JobState::kFailed);
  EXPECT_EQ(s.LostWorkers(killer).size(), 2u);
  s.Dispatch();
  EXPECT_TRUE(Assigns(s.TakeActions()).empty()) << "not requeued";
}

TEST(Scheduler, JobsGoOnlyToWorkersWithTheLabelsTheyRequire) {
  FakeClock clock;
  Scheduler s(clock, Options());
  JobId gpu = s.AddJob(Millis(0), false, false, {{"gpu", "1"}});
  JobId any = s.AddJob(Millis(0));
  s.AddWorker("cpu", 2, {{"arch", "x86_64"}});
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 1u);
  EXPECT_EQ(assigns[0].job, any);
  EXPECT_EQ(s.TakeUnplaceable(), std::vector<JobId>{gpu}) << "no connected worker has gpu=1";
  EXPECT_EQ(s.state(gpu), JobState::kFailed);

  JobId later = s.AddJob(Millis(0), false, false, {{"gpu", "1"}});
  s.AddWorker("gpu-box", 1, {{"gpu", "1"}, {"arch", "x86_64"}});
  EXPECT_TRUE(s.TakeUnplaceable().empty());
  s.Dispatch();
  auto more = Assigns(s.TakeActions());
  ASSERT_EQ(more.size(), 1u);
  EXPECT_EQ(more[0].job, later);
  EXPECT_EQ(more[0].worker, "gpu-box");
}

TEST(Scheduler, AWorkerLostAfterStopHasItsJobsCancelledNotRequeued) {
  FakeClock clock;
  Scheduler s(clock, Options(), std::vector<Millis>(3, Millis(0)));
  s.AddWorker("w", 2);
  s.Dispatch();
  s.TakeActions();
  s.Stop("interrupted");
  auto cancelled = s.RemoveWorker("w").cancelled;
  EXPECT_EQ(cancelled, (std::vector<JobId>{1, 0}));
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.state(0), JobState::kCancelled);
  EXPECT_EQ(s.state(1), JobState::kCancelled);
  EXPECT_EQ(s.state(2), JobState::kNotRun);
}

TEST(Scheduler, RemovedWorkersJobsGoBackToTheFrontOfTheQueue) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(4, Millis(0)));
  s.AddWorker("a", 1);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 2u);
  auto removal = s.RemoveWorker("a", /*lost=*/true);
  EXPECT_TRUE(removal.cancelled.empty() && removal.quarantined.empty()) << "requeued, not finished";
  EXPECT_EQ(s.LostWorkers(first[0].job), std::vector<WorkerId>{"a"});
  EXPECT_TRUE(s.LostWorkers(first[1].job).empty()) << "it was only queued there, not running";
  EXPECT_FALSE(s.OnResult("a", first[0].lease, Verdict::kPassed)) << "lease was revoked";
  s.AddWorker("b", 1);
  s.Dispatch();
  auto again = Assigns(s.TakeActions());
  ASSERT_EQ(again.size(), 2u);
  EXPECT_EQ(again[0].job, 0u);
  EXPECT_EQ(again[1].job, 1u);
  EXPECT_NE(again[0].lease, first[0].lease) << "a new attempt gets a new lease";
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(Scheduler, RunningLeasesAreAWorkersFirstSlotsSinceTheyBecameSo) {
  FakeClock clock;
  // No timeouts: a lease runs (and says since when) whether or not it has a deadline.
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(3, Millis(0)));
  s.AddWorker("w1", 1);
  s.Dispatch();
  auto assigned = Assigns(s.TakeActions());
  ASSERT_EQ(assigned.size(), 2u);
  SteadyTime start = clock.Now();
  auto running = s.Running();
  ASSERT_EQ(running.size(), 1u) << "the prefetched lease waits at the worker";
  EXPECT_EQ(running[0].lease, assigned[0].lease);
  EXPECT_EQ(running[0].job, assigned[0].job);
  EXPECT_EQ(running[0].worker, "w1");
  EXPECT_EQ(running[0].since, start);

  clock.Advance(milliseconds(250));
  ASSERT_TRUE(s.OnResult("w1", assigned[0].lease, Verdict::kPassed));
  running = s.Running();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].lease, assigned[1].lease);
  EXPECT_EQ(running[0].since, start + milliseconds(250));
}

}  // namespace
}  // namespace testfarm::coordinator
