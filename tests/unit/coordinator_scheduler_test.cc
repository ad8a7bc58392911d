#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>

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
  ASSERT_TRUE(s.OnStarted("w", assign.lease));
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

TEST(Scheduler, TheSoonestOfManyRunningDeadlinesIsTheNextAndEndedLeasesLeaveNone) {
  FakeClock clock;
  // Timeouts 30, 10, 20 and none: deadlines 42, 22 and 32 s after they start (+2 grace, +10).
  Scheduler s(clock, Options(),
              {Millis(seconds(30)), Millis(seconds(10)), Millis(seconds(20)), Millis(0)});
  s.AddWorker("w", 4);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 4u);
  const SteadyTime start = clock.Now();
  for (const auto& a : assigns) ASSERT_TRUE(s.OnStarted("w", a.lease));
  EXPECT_EQ(s.NextDeadline(), start + seconds(22));
  // The soonest ends in time: the next is the 32 s one.
  ASSERT_TRUE(s.OnResult("w", assigns[1].lease, Verdict::kPassed));
  EXPECT_EQ(s.NextDeadline(), start + seconds(32));
  clock.Advance(seconds(32));
  auto expired = s.OnTimers();
  ASSERT_EQ(expired, std::vector<JobId>{2});
  EXPECT_EQ(s.NextDeadline(), start + seconds(42));
  ASSERT_TRUE(s.OnResult("w", assigns[0].lease, Verdict::kPassed));
  EXPECT_FALSE(s.NextDeadline().has_value()) << "the job without a timeout has no deadline";
  clock.Advance(seconds(100));
  EXPECT_TRUE(s.OnTimers().empty());
  ASSERT_TRUE(s.OnResult("w", assigns[3].lease, Verdict::kPassed));
  EXPECT_TRUE(s.Done());
}

TEST(Scheduler, AWorkerStillFetchingFilesDoesNotSpendItsTestsTimeouts) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(seconds(5)), Millis(0)});
  s.AddWorker("w", 2);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  // 60 s of fetching, a piece every second (the allowance is 17 s): held, not started, and
  // progressing, so nothing expires.
  for (int i = 0; i < 60; ++i) {
    clock.Advance(seconds(1));
    s.OnProgress("w");
    EXPECT_TRUE(s.OnTimers().empty()) << i;
  }
  EXPECT_EQ(*s.NextDeadline() - clock.Now(), seconds(17)) << "counted from the last progress";
  EXPECT_TRUE(s.Running().empty());
  ASSERT_TRUE(s.OnStarted("w", assigns[0].lease));
  EXPECT_EQ(*s.NextDeadline() - clock.Now(), seconds(5 + 2 + 10)) << "counted from the start";
  clock.Advance(seconds(17));
  auto expired = s.OnTimers();
  ASSERT_EQ(expired.size(), 1u) << "then the test's own timeout applies";
  EXPECT_EQ(s.state(0), JobState::kExpired);
}

TEST(Scheduler, AHeldLeaseTheWorkerNeverStartsExpiresAnAllowanceAfterItsLastProgress) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1),
              {Millis(seconds(5)), Millis(seconds(5)), Millis(seconds(5))});
  s.AddWorker("w", 1);
  s.Dispatch();
  auto held = Assigns(s.TakeActions());
  ASSERT_EQ(held.size(), 2u);
  clock.Advance(seconds(10));
  s.OnProgress("w");  // a piece of a file
  EXPECT_EQ(*s.NextDeadline() - clock.Now(), seconds(17));
  clock.Advance(seconds(16));
  EXPECT_TRUE(s.OnTimers().empty());
  clock.Advance(seconds(1));
  auto expired = s.OnTimers();
  EXPECT_EQ(expired, std::vector<JobId>{held[0].job}) << "the first; the second waits its turn";
  EXPECT_EQ(s.state(held[0].job), JobState::kExpired);
  EXPECT_EQ(Cancels(s.TakeActions()).size(), 1u);
  // The slot is free, and the worker did not start the next one either (it would have, had its
  // files been there): its allowance, from the same last progress, is over too.
  EXPECT_EQ(*s.NextDeadline(), clock.Now());
  EXPECT_EQ(s.OnTimers(), std::vector<JobId>{held[1].job});
}

TEST(Scheduler, AHeldLeaseWaitingBehindRunningOnesHasNoDeadline) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), {Millis(0), Millis(seconds(5))});
  s.AddWorker("w", 1);
  s.Dispatch();
  auto held = Assigns(s.TakeActions());
  ASSERT_EQ(held.size(), 2u);
  ASSERT_TRUE(s.OnStarted("w", held[0].lease));  // no timeout: runs as long as it likes
  clock.Advance(std::chrono::hours(3));
  EXPECT_TRUE(s.OnTimers().empty()) << "the second waits for the slot, not for the worker";
  EXPECT_FALSE(s.NextDeadline().has_value());
}

TEST(Scheduler, ALaterLeaseStartedFirstIsTheRunningOne) {
  FakeClock clock;
  // One slot and a prefetched lease: the worker starts the second job while the first waits for
  // its files. The second is the one running, timing out and counting a lost worker.
  Scheduler s(clock, Options(/*prefetch=*/1), {Millis(seconds(5)), Millis(seconds(5))});
  s.AddWorker("w", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  clock.Advance(seconds(3));
  ASSERT_TRUE(s.OnStarted("w", assigns[1].lease));
  auto running = s.Running();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].lease, assigns[1].lease);
  EXPECT_EQ(running[0].since, clock.Now());
  clock.Advance(seconds(17));
  auto expired = s.OnTimers();
  EXPECT_EQ(expired, std::vector<JobId>{assigns[1].job}) << "the started one, not the first";
  EXPECT_EQ(s.state(assigns[0].job), JobState::kLeased);
}

TEST(Scheduler, RunningChangesListEachStartAndEachEndOfAStartedLeaseOnce) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/0), std::vector<Millis>(6, Millis(0)));
  s.AddWorker("w1", 2);
  s.AddWorker("w2", 2);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 4u);
  std::map<WorkerId, std::vector<LeaseId>> held;
  for (const AssignAction& a : assigns) held[a.worker].push_back(a.lease);
  ASSERT_TRUE(s.OnStarted("w1", held["w1"][0]));
  ASSERT_TRUE(s.OnStarted("w2", held["w2"][0]));
  EXPECT_FALSE(s.OnStarted("w2", held["w2"][0])) << "said twice";
  auto changes = s.TakeRunningChanges();
  ASSERT_EQ(changes.started.size(), 2u);
  EXPECT_EQ(changes.started[0].lease, held["w1"][0]);
  EXPECT_EQ(changes.started[0].since, clock.Now());
  EXPECT_TRUE(changes.ended.empty());
  EXPECT_TRUE(s.TakeRunningChanges().started.empty()) << "taken once";

  ASSERT_TRUE(s.OnResult("w1", held["w1"][0], Verdict::kPassed));
  ASSERT_TRUE(s.OnResult("w1", held["w1"][1], Verdict::kPassed));  // never said started
  s.RemoveWorker("w2", /*lost=*/true);
  changes = s.TakeRunningChanges();
  EXPECT_TRUE(changes.started.empty());
  EXPECT_EQ(changes.ended, (std::vector<LeaseId>{held["w1"][0], held["w2"][0]}))
      << "only leases that had started end";
  s.Dispatch();
  auto more = Assigns(s.TakeActions());
  ASSERT_FALSE(more.empty());
  ASSERT_TRUE(s.OnStarted("w1", more[0].lease));
  s.AbandonOutstanding();
  changes = s.TakeRunningChanges();
  ASSERT_EQ(changes.started.size(), 1u);
  EXPECT_EQ(changes.ended, std::vector<LeaseId>{more[0].lease});
}

TEST(Scheduler, StartedIsIgnoredForStaleForeignOrRepeatedLeases) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(seconds(5)), Millis(seconds(5))});
  s.AddWorker("a", 1);
  s.AddWorker("b", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  const AssignAction& on_a = assigns[0].worker == "a" ? assigns[0] : assigns[1];
  EXPECT_FALSE(s.OnStarted("b", on_a.lease)) << "another worker's lease";
  EXPECT_FALSE(s.OnStarted("a", 999)) << "an unknown lease";
  ASSERT_TRUE(s.OnStarted("a", on_a.lease));
  SteadyTime deadline = *s.NextDeadline();
  clock.Advance(seconds(4));
  EXPECT_FALSE(s.OnStarted("a", on_a.lease)) << "said twice: the first word counts";
  EXPECT_EQ(*s.NextDeadline(), deadline);
  ASSERT_TRUE(s.OnResult("a", on_a.lease, Verdict::kPassed));
  EXPECT_FALSE(s.OnStarted("a", on_a.lease)) << "already over";
}

TEST(Scheduler, EachAcceptedStartObservesItsWaitSinceAssignment) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(2, Millis(0)));
  s.AddWorker("w", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 2u);
  clock.Advance(milliseconds(3));
  ASSERT_TRUE(s.OnStarted("w", assigns[0].lease));
  EXPECT_FALSE(s.OnStarted("w", assigns[0].lease)) << "said twice: observed once";
  EXPECT_FALSE(s.OnStarted("x", assigns[1].lease)) << "another worker's: not observed";
  clock.Advance(seconds(2));
  ASSERT_TRUE(s.OnStarted("w", assigns[1].lease));
  const LatencyHistogram& latency = s.dispatch_latency();
  EXPECT_EQ(latency.count(), 2u);
  EXPECT_EQ(latency.sum(), milliseconds(3) + milliseconds(2003));
  EXPECT_EQ(latency.CumulativeCount(2), 1u);   // <= 5 ms
  EXPECT_EQ(latency.CumulativeCount(10), 2u);  // <= 2.5 s
}

TEST(Scheduler, NoTimeoutMeansNoDeadline) {
  FakeClock clock;
  Scheduler s(clock, Options(), {Millis(0)});
  s.AddWorker("w", 1);
  s.Dispatch();
  ASSERT_TRUE(s.OnStarted("w", Assigns(s.TakeActions()).at(0).lease));
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
  ASSERT_TRUE(s.OnStarted(first[0].worker, first[0].lease));
  ASSERT_TRUE(s.RemoveWorker(first[0].worker, /*lost=*/true).quarantined.empty());
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].job, killer) << "requeued at the front";
  ASSERT_TRUE(s.OnStarted(second[0].worker, second[0].lease));
  auto removal = s.RemoveWorker(second[0].worker, /*lost=*/true);
  EXPECT_EQ(removal.quarantined, std::vector<JobId>{killer});
  EXPECT_EQ(s.state(killer), JobState::kFailed);
  EXPECT_EQ(s.LostWorkers(killer).size(), 2u);
  s.Dispatch();
  EXPECT_TRUE(Assigns(s.TakeActions()).empty()) << "not requeued";
}

TEST(Scheduler, AWorkerLostBeforeItsStartedArrivedCountsAgainstTheJobsItCouldRun) {
  FakeClock clock;
  // Two slots, two prefetched: one lease known started, three not. A `started` may die with
  // the worker, so the earliest unknown one fills the second slot; the last two only waited.
  Scheduler s(clock, Options(/*prefetch=*/2), std::vector<Millis>(4, Millis(0)));
  s.AddWorker("w", 2);
  s.Dispatch();
  auto held = Assigns(s.TakeActions());
  ASSERT_EQ(held.size(), 4u);
  ASSERT_TRUE(s.OnStarted("w", held[2].lease));
  s.RemoveWorker("w", /*lost=*/true);
  EXPECT_EQ(s.LostWorkers(held[2].job).size(), 1u) << "started";
  EXPECT_EQ(s.LostWorkers(held[0].job).size(), 1u) << "may have started";
  EXPECT_TRUE(s.LostWorkers(held[1].job).empty()) << "both slots accounted for";
  EXPECT_TRUE(s.LostWorkers(held[3].job).empty());
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
  ASSERT_TRUE(s.OnStarted("a", first[0].lease));
  auto removal = s.RemoveWorker("a", /*lost=*/true);
  EXPECT_TRUE(removal.cancelled.empty() && removal.quarantined.empty()) << "requeued, not finished";
  EXPECT_EQ(s.LostWorkers(first[0].job), std::vector<WorkerId>{"a"});
  EXPECT_TRUE(s.LostWorkers(first[1].job).empty()) << "it was only held there, not started";
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

TEST(Scheduler, RunningLeasesAreTheStartedOnesSinceTheirStart) {
  FakeClock clock;
  // No timeouts: a lease runs (and says since when) whether or not it has a deadline.
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(3, Millis(0)));
  s.AddWorker("w1", 1);
  s.Dispatch();
  auto assigned = Assigns(s.TakeActions());
  ASSERT_EQ(assigned.size(), 2u);
  EXPECT_TRUE(s.Running().empty()) << "assigned is not running";
  clock.Advance(milliseconds(40));
  SteadyTime start = clock.Now();
  ASSERT_TRUE(s.OnStarted("w1", assigned[0].lease));
  auto running = s.Running();
  ASSERT_EQ(running.size(), 1u) << "the prefetched lease waits at the worker";
  EXPECT_EQ(running[0].lease, assigned[0].lease);
  EXPECT_EQ(running[0].job, assigned[0].job);
  EXPECT_EQ(running[0].worker, "w1");
  EXPECT_EQ(running[0].since, start);

  clock.Advance(milliseconds(250));
  ASSERT_TRUE(s.OnResult("w1", assigned[0].lease, Verdict::kPassed));
  EXPECT_TRUE(s.Running().empty()) << "until the worker says it started the next";
  ASSERT_TRUE(s.OnStarted("w1", assigned[1].lease));
  running = s.Running();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(running[0].lease, assigned[1].lease);
  EXPECT_EQ(running[0].since, start + milliseconds(250));
}

// ---------------------------------------------------------------------------------------------
// Ordering: dependencies, fixtures, locks, processors, groups.

JobNeeds Needs(std::vector<std::string> locks = {}, unsigned processors = 1,
               std::optional<uint64_t> group = std::nullopt) {
  JobNeeds needs;
  needs.locks = std::move(locks);
  needs.processors = processors;
  needs.group = group;
  return needs;
}

// Runs the scheduler to the end: after every dispatch `check` sees what is outstanding, then
// the oldest outstanding lease ends with `verdict(job)`. Returns the jobs in the order they
// were assigned, with their workers.
struct Trace {
  std::vector<AssignAction> assigned;
  std::vector<JobId> ended;  // in the order they reported
  std::size_t Position(JobId job, const std::vector<JobId>& order) const {
    return static_cast<std::size_t>(std::find(order.begin(), order.end(), job) - order.begin());
  }
  std::vector<JobId> AssignedJobs() const {
    std::vector<JobId> jobs;
    for (const auto& a : assigned) jobs.push_back(a.job);
    return jobs;
  }
  std::size_t Started(JobId job) const { return Position(job, AssignedJobs()); }
  std::size_t Ended(JobId job) const { return Position(job, ended); }
  const WorkerId& WorkerOf(JobId job) const { return assigned.at(Started(job)).worker; }
};

Trace RunToEnd(Scheduler& s, const std::function<Verdict(JobId)>& verdict,
               const std::function<void(const std::vector<AssignAction>&)>& check = {}) {
  Trace trace;
  std::deque<AssignAction> outstanding;
  for (int steps = 0; steps < 10000 && !s.Done(); ++steps) {
    s.Dispatch();
    for (const AssignAction& a : Assigns(s.TakeActions())) {
      trace.assigned.push_back(a);
      outstanding.push_back(a);
    }
    if (check) check({outstanding.begin(), outstanding.end()});
    if (outstanding.empty()) break;  // nothing can run: a test of Done() follows
    AssignAction next = outstanding.front();
    outstanding.pop_front();
    EXPECT_TRUE(s.OnResult(next.worker, next.lease, verdict(next.job)));
    trace.ended.push_back(next.job);
  }
  return trace;
}

Verdict AllPass(JobId) {
  return Verdict::kPassed;
}

TEST(SchedulerOrdering, AJobWaitsForWhatItDependsOnWhateverItsResult) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/2));
  JobId dependent = s.AddJob(Millis(0));  // first in the queue, yet it waits
  JobId base = s.AddJob(Millis(0));
  s.AddDependency(dependent, base, /*must_pass=*/false);
  s.AddWorker("w", 4);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 1u) << "the dependent may not start, not even as prefetch";
  EXPECT_EQ(first[0].job, base);
  ASSERT_TRUE(s.OnResult("w", first[0].lease, Verdict::kFailed));
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u) << "DEPENDS is order only: a failed dependency still lets it run";
  EXPECT_EQ(second[0].job, dependent);
  EXPECT_TRUE(s.TakeBlocked().empty());
}

TEST(SchedulerOrdering, UsersOfAFailedSetupAreNotRunAndCleanupStillRuns) {
  FakeClock clock;
  Scheduler s(clock, Options());
  JobId setup = s.AddJob(Millis(0));
  JobId user = s.AddJob(Millis(0));
  JobId user_of_user = s.AddJob(Millis(0));  // a fixture whose setup is `user`
  JobId cleanup = s.AddJob(Millis(0));
  JobId unrelated = s.AddJob(Millis(0));
  s.AddDependency(user, setup, /*must_pass=*/true);
  s.AddDependency(user_of_user, user, /*must_pass=*/true);
  s.AddDependency(cleanup, setup, false);
  s.AddDependency(cleanup, user, false);
  s.AddWorker("w", 2);
  Trace trace =
      RunToEnd(s, [&](JobId job) { return job == setup ? Verdict::kFailed : Verdict::kPassed; });
  EXPECT_TRUE(s.Done());
  EXPECT_EQ(s.state(setup), JobState::kFailed);
  EXPECT_EQ(s.state(user), JobState::kNotRun);
  EXPECT_EQ(s.state(user_of_user), JobState::kNotRun);
  EXPECT_EQ(s.state(cleanup), JobState::kPassed) << "cleanup runs even when the setup failed";
  EXPECT_EQ(s.state(unrelated), JobState::kPassed);
  EXPECT_EQ(trace.Started(user), trace.assigned.size()) << "never assigned";
  EXPECT_GT(trace.Started(cleanup), trace.Ended(setup));
  auto blocked = s.TakeBlocked();
  ASSERT_EQ(blocked.size(), 2u);
  EXPECT_EQ(blocked[0].job, user);
  EXPECT_EQ(blocked[0].because, setup);
  EXPECT_EQ(blocked[1].job, user_of_user);
  EXPECT_EQ(blocked[1].because, user);
  EXPECT_TRUE(s.TakeBlocked().empty());
}

TEST(SchedulerOrdering, CleanupRunsAfterEveryUserEvenFailedOnes) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/4));
  JobId cleanup = s.AddJob(Millis(0));
  JobId setup = s.AddJob(Millis(0));
  std::vector<JobId> users;
  for (int i = 0; i < 4; ++i) users.push_back(s.AddJob(Millis(0)));
  for (JobId user : users) {
    s.AddDependency(user, setup, true);
    s.AddDependency(cleanup, user, false);
  }
  s.AddDependency(cleanup, setup, false);
  s.AddWorker("w", 3);
  Trace trace = RunToEnd(s, [&](JobId job) {
    return job == users[1] || job == users[3] ? Verdict::kFailed : Verdict::kPassed;
  });
  ASSERT_TRUE(s.Done());
  for (JobId user : users) {
    EXPECT_GT(trace.Started(user), trace.Ended(setup)) << user;
    EXPECT_GT(trace.Started(cleanup), trace.Ended(user)) << user;
  }
  EXPECT_EQ(s.state(cleanup), JobState::kPassed);
  EXPECT_TRUE(s.TakeBlocked().empty()) << "users' failures block nothing";
}

TEST(SchedulerOrdering, DependingOnAJobDecidedBeforeTheRun) {
  FakeClock clock;
  Scheduler s(clock, Options());
  JobId broken_setup = s.AddEndedJob(JobState::kFailed);  // e.g. its executable is missing
  JobId disabled_setup = s.AddEndedJob(JobState::kSkipped);
  JobId blocked = s.AddJob(Millis(0));
  JobId runs = s.AddJob(Millis(0));
  s.AddDependency(blocked, broken_setup, true);
  s.AddDependency(runs, disabled_setup, true);  // a disabled setup counts as passed
  auto now = s.TakeBlocked();
  ASSERT_EQ(now.size(), 1u) << "decided at once";
  EXPECT_EQ(now[0].job, blocked);
  EXPECT_EQ(now[0].because, broken_setup);
  s.AddWorker("w", 2);
  Trace trace = RunToEnd(s, AllPass);
  ASSERT_EQ(trace.AssignedJobs(), std::vector<JobId>{runs});
  EXPECT_TRUE(s.Done());
}

TEST(SchedulerOrdering, JobsSharingALockNeverOverlapOnAnyWorker) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/2));
  std::map<JobId, std::vector<std::string>> locks;
  for (int i = 0; i < 12; ++i) {
    std::vector<std::string> mine;
    if (i % 3 == 0) mine.push_back("db");
    if (i % 4 == 0) mine.push_back("net");
    JobId id = s.AddJob(Millis(0), Needs(mine));
    locks[id] = mine;
  }
  s.AddWorker("a", 3);
  s.AddWorker("b", 3);
  std::size_t most_outstanding = 0;
  Trace trace = RunToEnd(s, AllPass, [&](const std::vector<AssignAction>& outstanding) {
    std::map<std::string, int> holders;
    for (const auto& a : outstanding) {
      for (const std::string& lock : locks[a.job]) ++holders[lock];
    }
    for (const auto& [lock, count] : holders) EXPECT_LE(count, 1) << lock;
    most_outstanding = std::max(most_outstanding, outstanding.size());
  });
  EXPECT_EQ(trace.assigned.size(), 12u);
  EXPECT_TRUE(s.Done());
  EXPECT_GT(most_outstanding, 2u) << "jobs without a shared lock still run side by side";
}

TEST(SchedulerOrdering, AJobOfSeveralProcessorsHoldsThatManySlots) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/0));
  JobId heavy = s.AddJob(Millis(0), Needs({}, 3));
  std::vector<JobId> light;
  for (int i = 0; i < 5; ++i) light.push_back(s.AddJob(Millis(0)));
  s.AddWorker("w", 4);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 2u) << "3 slots + 1 slot fill the worker's 4";
  EXPECT_EQ(first[0].job, heavy);
  EXPECT_EQ(first[1].job, light[0]);
  ASSERT_TRUE(s.OnResult("w", first[1].lease, Verdict::kPassed));
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].job, light[1]);
  ASSERT_TRUE(s.OnResult("w", first[0].lease, Verdict::kPassed));
  s.Dispatch();
  EXPECT_EQ(Assigns(s.TakeActions()).size(), 3u) << "the heavy job's slots are free again";
}

TEST(SchedulerOrdering, ProcessorsNeverOversubscribeAWorkerWithPrefetch) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/4));
  std::map<JobId, unsigned> processors;
  for (int i = 0; i < 20; ++i) {
    unsigned n = i % 5 == 0 ? 3 : (i % 7 == 0 ? 9 : 1);  // 9: more than the worker has
    processors[s.AddJob(Millis(0), Needs({}, n))] = n;
  }
  s.AddWorker("w", 4);
  Trace trace = RunToEnd(s, AllPass, [&](const std::vector<AssignAction>& outstanding) {
    unsigned held = 0;
    bool heavy = false;
    for (const auto& a : outstanding) {
      unsigned weight = std::min(processors[a.job], 4u);
      held += weight;
      heavy = heavy || weight > 1;
    }
    if (heavy) {
      EXPECT_LE(held, 4u) << "with a heavy job held, everything held runs at once";
    }
  });
  EXPECT_EQ(trace.assigned.size(), 20u) << "a job larger than every worker still runs (clamped)";
  EXPECT_TRUE(s.Done());
}

TEST(SchedulerOrdering, AFixtureGroupRunsOnTheWorkerThatTookItsFirstJob) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1));
  const uint64_t group = 7;
  JobId setup = s.AddJob(Millis(0), Needs({}, 1, group));
  std::vector<JobId> users;
  std::vector<JobId> free_jobs;
  for (int i = 0; i < 6; ++i) {
    users.push_back(s.AddJob(Millis(0), Needs({}, 1, group)));
    free_jobs.push_back(s.AddJob(Millis(0)));
  }
  JobId cleanup = s.AddJob(Millis(0), Needs({}, 1, group));
  for (JobId user : users) {
    s.AddDependency(user, setup, true);
    s.AddDependency(cleanup, user, false);
  }
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  Trace trace = RunToEnd(s, AllPass);
  ASSERT_TRUE(s.Done());
  const WorkerId& home = trace.WorkerOf(setup);
  for (JobId user : users) EXPECT_EQ(trace.WorkerOf(user), home) << user;
  EXPECT_EQ(trace.WorkerOf(cleanup), home);
  std::set<WorkerId> free_workers;
  for (JobId job : free_jobs) free_workers.insert(trace.WorkerOf(job));
  EXPECT_EQ(free_workers.size(), 2u) << "jobs outside the group use both workers";
}

TEST(SchedulerOrdering, AGroupWhoseWorkerLeftGoesToTheNextWorker) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/0));
  JobId setup = s.AddJob(Millis(0), Needs({}, 1, 1));
  JobId user = s.AddJob(Millis(0), Needs({}, 1, 1));
  s.AddDependency(user, setup, true);
  s.AddWorker("a", 1);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(s.OnResult("a", first[0].lease, Verdict::kPassed));
  s.AddWorker("b", 1);
  s.RemoveWorker("a");
  s.Dispatch();
  auto second = Assigns(s.TakeActions());
  ASSERT_EQ(second.size(), 1u) << "not stuck waiting for a worker that is gone";
  EXPECT_EQ(second[0].job, user);
  EXPECT_EQ(second[0].worker, "b");
}

TEST(SchedulerOrdering, ASkippedOrExpectedFailureSetupCountsAsPassedForItsUsers) {
  // The caller reports the interpreted result: a setup that skipped itself or was expected to
  // fail reports Verdict::kPassed, and its users run.
  FakeClock clock;
  Scheduler s(clock, Options());
  JobId setup = s.AddJob(Millis(0));
  JobId user = s.AddJob(Millis(0));
  s.AddDependency(user, setup, true);
  s.AddWorker("w", 1);
  Trace trace = RunToEnd(s, AllPass);
  EXPECT_EQ(trace.AssignedJobs(), (std::vector<JobId>{setup, user}));
}

TEST(SchedulerOrdering, StoppingLeavesWaitingJobsNotRunWithoutBlockingThem) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/0, /*max_failures=*/1));
  JobId setup = s.AddJob(Millis(0));
  JobId user = s.AddJob(Millis(0));
  s.AddDependency(user, setup, true);
  s.AddWorker("w", 1);
  s.Dispatch();
  auto first = Assigns(s.TakeActions());
  ASSERT_EQ(first.size(), 1u);
  s.Stop("interrupted");
  ASSERT_TRUE(s.OnResult("w", first[0].lease, Verdict::kCancelled));
  EXPECT_EQ(s.state(user), JobState::kNotRun);
  EXPECT_TRUE(s.TakeBlocked().empty()) << "not run because the run stopped, not the setup";
  EXPECT_TRUE(s.Done());
}

TEST(SchedulerOrdering, JobOfNamesTheLeasesJobOnlyForItsWorker) {
  FakeClock clock;
  Scheduler s(clock, Options());
  JobId job = s.AddJob(Millis(0));
  s.AddWorker("w", 1);
  s.Dispatch();
  auto assigns = Assigns(s.TakeActions());
  ASSERT_EQ(assigns.size(), 1u);
  EXPECT_EQ(s.JobOf("w", assigns[0].lease), job);
  EXPECT_FALSE(s.JobOf("other", assigns[0].lease));
  EXPECT_FALSE(s.JobOf("w", assigns[0].lease + 1));
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(SchedulerAvoid, ARetryGoesElsewhereOnlyWhereItCouldRun) {
  FakeClock clock;
  // The other worker may fill nothing for this run: the retry stays where it can run.
  {
    Scheduler s(clock, Options());
    s.AddWorker("a", 1);
    s.AddWorker("b", 1);
    s.SetGrant("b", 0);
    JobNeeds needs;
    needs.avoid = "a";
    JobId retry = s.AddJob(Millis(0), needs);
    s.Dispatch();
    auto assigns = Assigns(s.TakeActions());
    ASSERT_EQ(assigns.size(), 1u);
    EXPECT_EQ(assigns[0].job, retry);
    EXPECT_EQ(assigns[0].worker, "a");
  }
  // Its fixture group is pinned to the worker it failed on: it goes there, never waiting forever.
  {
    Scheduler s(clock, Options());
    s.AddWorker("a", 1);
    JobNeeds grouped;
    grouped.group = 7;
    JobId setup = s.AddJob(Millis(0), grouped);
    s.Dispatch();
    auto first = Assigns(s.TakeActions());
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(first[0].job, setup);
    ASSERT_TRUE(s.OnResult("a", first[0].lease, Verdict::kPassed));
    s.AddWorker("b", 1);
    JobNeeds retry_needs = grouped;
    retry_needs.avoid = "a";
    JobId retry = s.AddJob(Millis(0), retry_needs);
    s.Dispatch();
    auto assigns = Assigns(s.TakeActions());
    ASSERT_EQ(assigns.size(), 1u);
    EXPECT_EQ(assigns[0].job, retry);
    EXPECT_EQ(assigns[0].worker, "a");
  }
  // With a worker that can take it, it goes there.
  {
    Scheduler s(clock, Options());
    s.AddWorker("a", 1);
    s.AddWorker("b", 1);
    JobNeeds needs;
    needs.avoid = "a";
    s.AddJob(Millis(0), needs);
    s.Dispatch();
    auto assigns = Assigns(s.TakeActions());
    ASSERT_EQ(assigns.size(), 1u);
    EXPECT_EQ(assigns[0].worker, "b");
  }
}

}  // namespace
TEST(Scheduler, AHandedBackLeaseGoesToTheFrontOfTheQueueUnblamed) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(4, Millis(0)));
  s.AddWorker("a", 1);
  s.Dispatch();
  auto held = Assigns(s.TakeActions());
  ASSERT_EQ(held.size(), 2u);
  ASSERT_TRUE(s.OnStarted("a", held[0].lease));
  // A draining worker hands back what it has not started, never what runs.
  EXPECT_EQ(s.HandBack("a", held[0].lease), Scheduler::HandedBack::kRefused) << "it runs";
  EXPECT_EQ(s.HandBack("b", held[1].lease), Scheduler::HandedBack::kRefused) << "not b's";
  EXPECT_EQ(s.HandBack("a", 999), Scheduler::HandedBack::kRefused) << "unknown";
  s.SetGrant("a", 0);  // what the farm does for a draining worker
  EXPECT_EQ(s.HandBack("a", held[1].lease), Scheduler::HandedBack::kRequeued);
  EXPECT_EQ(s.HandBack("a", held[1].lease), Scheduler::HandedBack::kRefused) << "only once";
  EXPECT_EQ(s.state(held[1].job), JobState::kPending);
  EXPECT_TRUE(s.LostWorkers(held[1].job).empty()) << "it only waited there";
  EXPECT_EQ(s.outstanding(), 1u);
  s.Dispatch();
  EXPECT_TRUE(Assigns(s.TakeActions()).empty()) << "a draining worker gets nothing new";
  s.AddWorker("b", 1);
  s.Dispatch();
  auto again = Assigns(s.TakeActions());
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again[0].job, held[1].job) << "at the front";
  EXPECT_EQ(again[0].worker, "b");
  EXPECT_FALSE(s.OnResult("a", held[1].lease, Verdict::kPassed)) << "the old lease is gone";
}

TEST(Scheduler, ALeaseHandedBackAfterStopIsCancelled) {
  FakeClock clock;
  Scheduler s(clock, Options(/*prefetch=*/1), std::vector<Millis>(2, Millis(0)));
  s.AddWorker("a", 1);
  s.Dispatch();
  auto held = Assigns(s.TakeActions());
  ASSERT_EQ(held.size(), 2u);
  s.Stop("interrupted");
  s.TakeActions();
  EXPECT_EQ(s.HandBack("a", held[1].lease), Scheduler::HandedBack::kCancelled);
  EXPECT_EQ(s.state(held[1].job), JobState::kCancelled);
}

}  // namespace testfarm::coordinator
