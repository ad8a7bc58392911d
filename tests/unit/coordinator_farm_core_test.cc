// The farm core on a fake clock: several runs sharing workers, fairly, each told only of its own
// tests; and the fair-share rule on its own.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coordinator/dashboard_feed.h"
#include "coordinator/fair_share.h"
#include "coordinator/farm_core.h"
#include "coordinator_run_fixtures.h"

namespace testfarm::coordinator {
namespace {

using fixtures::RecordingReporter;
using fixtures::Specs;
using std::chrono::seconds;

TEST(FairShare, ARunAloneGetsEverySlot) {
  EXPECT_EQ(FairQuotas(8, {{3, 0}}), (std::vector<std::size_t>{8}));
  EXPECT_EQ(ShareSlots({4, 4}, {{100, 0}}), (std::vector<std::vector<unsigned>>{{4, 4}}));
}

TEST(FairShare, EqualRunsGetEqualShares) {
  EXPECT_EQ(FairQuotas(8, {{100, 0}, {100, 0}}), (std::vector<std::size_t>{4, 4}));
  // The odd slot goes to the earlier run.
  EXPECT_EQ(FairQuotas(7, {{100, 0}, {100, 0}}), (std::vector<std::size_t>{4, 3}));
  // More runs than slots: one each, earliest first.
  EXPECT_EQ(FairQuotas(2, {{5, 0}, {5, 0}, {5, 0}}), (std::vector<std::size_t>{1, 1, 0}));
}

TEST(FairShare, WhatARunCannotUseGoesToTheOthers) {
  // Run 0 can use 1 slot now: run 1 gets the 7 it can use; nothing is left idle.
  EXPECT_EQ(FairQuotas(8, {{1, 0}, {100, 0}}), (std::vector<std::size_t>{1, 7}));
  // Both can use little: the idle rest is still dealt out, fairly.
  EXPECT_EQ(FairQuotas(8, {{1, 0}, {1, 0}}), (std::vector<std::size_t>{4, 4}));
}

TEST(FairShare, ACapIsNeverExceeded) {
  EXPECT_EQ(FairQuotas(8, {{100, 2}, {100, 0}}), (std::vector<std::size_t>{2, 6}));
  EXPECT_EQ(FairQuotas(8, {{100, 2}}), (std::vector<std::size_t>{2}));
  // Slots every run's cap leaves over stay idle.
  EXPECT_EQ(ShareSlots({4}, {{100, 1}, {100, 1}}), (std::vector<std::vector<unsigned>>{{1}, {1}}));
}

TEST(FairShare, SlotsAreDealtPerWorkerInOrder) {
  EXPECT_EQ(ShareSlots({2, 2, 2}, {{100, 0}, {100, 0}}),
            (std::vector<std::vector<unsigned>>{{2, 1, 0}, {0, 1, 2}}));
}

TEST(FairShare, ARunGetsItsShareWhereItsLabelsAre) {
  // Run 0 can use only worker 1 (say, the GPU machine); run 1 can use both.
  EXPECT_EQ(ShareSlots({2, 2}, {{100, 0}, {100, 0}}, {{false, true}, {true, true}}),
            (std::vector<std::vector<unsigned>>{{0, 2}, {2, 0}}));
  // A run no worker suits takes no share from the others.
  EXPECT_EQ(ShareSlots({2, 2}, {{100, 0}, {100, 0}}, {{false, false}, {true, true}}),
            (std::vector<std::vector<unsigned>>{{0, 0}, {2, 2}}));
  // Its demand counts only as far as its workers reach: the rest goes to the other.
  EXPECT_EQ(ShareSlots({1, 3}, {{100, 0}, {100, 0}}, {{true, false}, {true, true}}),
            (std::vector<std::vector<unsigned>>{{1, 0}, {0, 3}}));
}

// A standing farm (workers stay across runs) with runs added by hand.
struct Farm : fixtures::Mailboxes {
  Farm()
      : core(clock, FarmOptions{.liveness = LivenessOptions{seconds(1), 3}, .single_run = false}) {}

  struct Client {
    RunId id = 0;
    RecordingReporter reporter;
    RunCore* run = nullptr;
  };

  Client& Submit(int tests, RunLimits limits = {}, std::string prefix = "t") {
    auto client = std::make_unique<Client>();
    client->id = core.NewRunId();
    RunOptions options;
    options.scheduler.first_lease = FarmCore::FirstLease(client->id);
    options.scheduler.prefetch = 0;  // assignments are exactly the slots granted
    options.scheduler.kill_grace = seconds(2);
    std::vector<TestSpec> specs = Specs(tests);
    for (TestSpec& spec : specs) spec.name = spec.suite = prefix + spec.name.substr(1);
    auto run = std::make_unique<RunCore>(clock, std::move(specs), options, client->reporter);
    client->run = run.get();
    run->Start();
    core.AddRun(client->id, std::move(run), limits);
    clients.push_back(std::move(client));
    return *clients.back();
  }
  void Hello(const std::string& peer, unsigned slots) {
    protocol::Message hello = protocol::Hello{peer, slots, "linux", "x86_64", {}};
    core.OnMessage(peer, hello);
  }
  void Say(const std::string& peer, protocol::Message message) { core.OnMessage(peer, message); }
  void Tick() {
    core.Tick();
    Sort(core.TakeOutbox());
  }
  // Every job the worker holds starts and finishes with `state`.
  void RunAll(const std::string& peer, ExitState state = ExitState::Exited(0)) {
    for (const protocol::JobAssign& job : std::exchange(jobs[peer], {})) {
      Say(peer, protocol::JobStarted{job.lease});
      Say(peer, fixtures::ResultOf(job, state));
    }
  }
  std::size_t Held(const std::string& peer, const std::string& prefix) const {
    auto it = jobs.find(peer);
    if (it == jobs.end()) return 0;
    std::size_t n = 0;
    for (const auto& job : it->second) n += job.name.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }

  FakeClock clock;
  FarmCore core;
  std::vector<std::unique_ptr<Client>> clients;
};

TEST(FarmCore, TwoRunsShareTheSlotsAndEachHearsOnlyOfItsOwnTests) {
  Farm farm;
  farm.Hello("w1", 2);
  farm.Hello("w2", 2);
  Farm::Client& a = farm.Submit(6, {}, "a");
  Farm::Client& b = farm.Submit(6, {}, "b");
  farm.Tick();
  EXPECT_EQ(farm.core.GrantOf(a.id, "w1") + farm.core.GrantOf(a.id, "w2"), 2u);
  EXPECT_EQ(farm.core.GrantOf(b.id, "w1") + farm.core.GrantOf(b.id, "w2"), 2u);
  EXPECT_EQ(farm.Held("w1", "a") + farm.Held("w2", "a"), 2u);
  EXPECT_EQ(farm.Held("w1", "b") + farm.Held("w2", "b"), 2u);
  for (int round = 0;
       round < 10 && (a.run->phase() != RunPhase::kDone || b.run->phase() != RunPhase::kDone);
       ++round) {
    farm.RunAll("w1");
    farm.RunAll("w2");
    farm.Tick();
  }
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  ASSERT_EQ(b.run->phase(), RunPhase::kDone);
  RunSummary sa = farm.core.FinishRun(a.id);
  RunSummary sb = farm.core.FinishRun(b.id);
  EXPECT_EQ(sa.passed, 6u);
  EXPECT_EQ(sb.passed, 6u);
  for (const TestReport& r : a.reporter.finished) EXPECT_EQ(r.name[0], 'a');
  for (const TestReport& r : b.reporter.finished) EXPECT_EQ(r.name[0], 'b');
  EXPECT_EQ(a.reporter.finished.size(), 6u);
  EXPECT_EQ(b.reporter.finished.size(), 6u);
}

TEST(FarmCore, AFinishingRunsSlotsGoToTheOtherAtOnce) {
  Farm farm;
  farm.Hello("w", 4);
  Farm::Client& a = farm.Submit(2, {}, "a");
  Farm::Client& b = farm.Submit(20, {}, "b");
  farm.Tick();
  // a can use only 2 now: b gets the rest.
  EXPECT_EQ(farm.core.GrantOf(a.id, "w"), 2u);
  EXPECT_EQ(farm.core.GrantOf(b.id, "w"), 2u);
  farm.RunAll("w");
  farm.Tick();
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  farm.core.FinishRun(a.id);
  farm.Tick();
  EXPECT_EQ(farm.core.GrantOf(b.id, "w"), 4u);
  EXPECT_EQ(farm.Held("w", "b"), 4u);
}

TEST(FarmCore, ARunAlonesFallingDemandDoesNotShareTheSlotsAgain) {
  Farm farm;
  farm.Hello("w1", 4);
  farm.Hello("w2", 4);
  Farm::Client& a = farm.Submit(40, {}, "a");
  farm.Tick();
  const uint64_t shared = farm.core.shares_made();
  EXPECT_GE(shared, 1u);
  // Its demand falls below the 8 slots for its last 8 tests: still every slot is its own, and
  // nothing is shared out again (a share visits every worker: at a thousand workers, a
  // thousand visits per finished test at the end of every run).
  for (int round = 0; round < 20 && a.run->phase() != RunPhase::kDone; ++round) {
    farm.RunAll("w1");
    farm.RunAll("w2");
    farm.Tick();
    EXPECT_EQ(farm.core.GrantOf(a.id, "w1") + farm.core.GrantOf(a.id, "w2"), 8u);
  }
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  EXPECT_EQ(farm.core.shares_made(), shared);
  EXPECT_EQ(farm.core.FinishRun(a.id).passed, 40u);
  // With a second run, a change in what one could use does share again.
  Farm::Client& b = farm.Submit(2, {}, "b");
  Farm::Client& c = farm.Submit(20, {}, "c");
  farm.Tick();
  const uint64_t two = farm.core.shares_made();
  EXPECT_GT(two, shared);
  EXPECT_EQ(farm.core.GrantOf(b.id, "w1") + farm.core.GrantOf(b.id, "w2"), 2u);
  farm.RunAll("w1");
  farm.RunAll("w2");
  farm.Tick();
  ASSERT_EQ(b.run->phase(), RunPhase::kDone);
  EXPECT_GT(farm.core.shares_made(), two);
  EXPECT_EQ(farm.core.GrantOf(c.id, "w1") + farm.core.GrantOf(c.id, "w2"), 8u);
}

TEST(FarmCore, MaxSlotsCapsARun) {
  Farm farm;
  farm.Hello("w", 4);
  Farm::Client& a = farm.Submit(10, RunLimits{.max_slots = 1}, "a");
  farm.Tick();
  EXPECT_EQ(farm.core.GrantOf(a.id, "w"), 1u);
  EXPECT_EQ(farm.Held("w", "a"), 1u);
}

TEST(FarmCore, ADrainingWorkerGetsNothingNewAndWhatItHandsBackRunsElsewhereAtOnce) {
  Farm farm;
  farm.Hello("w1", 2);
  farm.Hello("w2", 2);
  Farm::Client& a = farm.Submit(8, {}, "a");
  farm.Tick();
  ASSERT_EQ(farm.jobs["w1"].size(), 2u);
  std::vector<protocol::JobAssign> on_w1 = farm.TakeJobs("w1");
  farm.Say("w1", protocol::JobStarted{on_w1[0].lease});
  farm.Say("w1", protocol::Drain{"SIGTERM"});
  farm.Say("w1", protocol::HandBack{on_w1[1].lease, "the worker is draining"});
  farm.Tick();
  EXPECT_EQ(farm.core.GrantOf(a.id, "w1"), 0u);
  EXPECT_TRUE(farm.jobs["w1"].empty()) << "nothing new for a draining worker";
  farm.RunAll("w2");
  farm.Tick();
  std::vector<protocol::JobAssign> next = farm.jobs["w2"];
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(next[0].name, on_w1[1].name) << "the handed-back test goes first, to another worker";
  // Its running test finishes there; it gets nothing for its freed slot, and leaves.
  farm.Say("w1", fixtures::ResultOf(on_w1[0], ExitState::Exited(0)));
  farm.Tick();
  EXPECT_TRUE(farm.jobs["w1"].empty());
  farm.Say("w1", protocol::Bye{"drained"});
  for (int round = 0; round < 10 && a.run->phase() != RunPhase::kDone; ++round) {
    farm.RunAll("w2");
    farm.Tick();
  }
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.core.FinishRun(a.id);
  EXPECT_EQ(summary.passed, 8u);
  EXPECT_EQ(a.reporter.finished.size(), 8u) << "each test once";
  std::set<std::string> names;
  for (const TestReport& r : a.reporter.finished) names.insert(r.name);
  EXPECT_EQ(names.size(), 8u);
}

TEST(FarmCore, AWorkerThatLeavesWhileRunningATestHasItRequeuedUnblamed) {
  Farm farm;
  farm.Hello("w1", 1);
  Farm::Client& a = farm.Submit(1, {}, "a");
  farm.Tick();
  std::vector<protocol::JobAssign> on_w1 = farm.TakeJobs("w1");
  ASSERT_EQ(on_w1.size(), 1u);
  farm.Say("w1", protocol::JobStarted{on_w1[0].lease});
  farm.Say("w1", protocol::Drain{"SIGTERM"});
  farm.Say("w1", protocol::Bye{"the drain timed out"});  // its running test was handed back
  farm.Hello("w2", 1);
  farm.Tick();
  ASSERT_EQ(farm.jobs["w2"].size(), 1u);
  farm.RunAll("w2");
  farm.Tick();
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.core.FinishRun(a.id);
  EXPECT_EQ(summary.passed, 1u);
  ASSERT_EQ(a.reporter.finished.size(), 1u);
  EXPECT_EQ(a.reporter.finished[0].worker, "w2");
}

TEST(FarmCore, ARunCancelledMidFlightLeavesTheOtherUntouched) {
  Farm farm;
  farm.Hello("w", 2);
  Farm::Client& a = farm.Submit(3, {}, "a");
  Farm::Client& b = farm.Submit(3, {}, "b");
  farm.Tick();
  for (const auto& job : farm.jobs["w"]) farm.Say("w", protocol::JobStarted{job.lease});
  a.run->OnInterrupt();
  farm.Tick();
  // Only a's running test is cancelled.
  ASSERT_EQ(farm.cancels["w"].size(), 1u);
  uint64_t cancelled = farm.cancels["w"][0];
  EXPECT_EQ(cancelled >> 40, a.id);
  // The worker confirms; a ends with its test cancelled and the rest not run.
  for (const auto& job : farm.jobs["w"]) {
    if (job.lease == cancelled) farm.Say("w", fixtures::ResultOf(job, ExitState::Cancelled("x")));
  }
  std::erase_if(farm.jobs["w"], [&](const auto& job) { return job.lease == cancelled; });
  farm.Tick();
  ASSERT_EQ(a.run->phase(), RunPhase::kDone);
  RunSummary sa = farm.core.FinishRun(a.id);
  EXPECT_EQ(sa.cancelled, 1u);
  EXPECT_EQ(sa.not_run, 2u);
  for (int round = 0; round < 10 && b.run->phase() != RunPhase::kDone; ++round) {
    farm.RunAll("w");
    farm.Tick();
  }
  ASSERT_EQ(b.run->phase(), RunPhase::kDone);
  EXPECT_EQ(farm.core.FinishRun(b.id).passed, 3u);
}

TEST(FarmCore, ALostWorkerRequeuesEachRunsOwnTestsAndTheFarmStays) {
  Farm farm;
  farm.Hello("w1", 1);
  farm.Hello("w2", 1);
  Farm::Client& a = farm.Submit(2, {}, "a");
  Farm::Client& b = farm.Submit(2, {}, "b");
  farm.Tick();
  ASSERT_EQ(farm.jobs["w1"].size() + farm.jobs["w2"].size(), 2u);
  // w1 goes silent; w2 keeps talking.
  for (int i = 0; i < 5; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w2", protocol::Heartbeat{});
    farm.Tick();
  }
  EXPECT_FALSE(farm.core.IsWorker("w1"));
  EXPECT_EQ(farm.core.TakeGone(), (std::vector<std::string>{"w1"}));
  farm.jobs["w1"].clear();
  for (int round = 0;
       round < 10 && (a.run->phase() != RunPhase::kDone || b.run->phase() != RunPhase::kDone);
       ++round) {
    farm.RunAll("w2");
    farm.Tick();
  }
  EXPECT_EQ(farm.core.FinishRun(a.id).passed, 2u);
  EXPECT_EQ(farm.core.FinishRun(b.id).passed, 2u);
  // A standing farm keeps its workers between runs: nobody was told goodbye.
  EXPECT_TRUE(farm.core.IsWorker("w2"));
}

TEST(FarmCore, AJobHeldBehindAnotherRunsTestIsNotExpired) {
  Farm farm;
  farm.Hello("w", 2);
  Farm::Client& a = farm.Submit(2, {}, "a");
  farm.Tick();
  ASSERT_EQ(farm.Held("w", "a"), 2u);
  for (const auto& job : farm.jobs["w"]) farm.Say("w", protocol::JobStarted{job.lease});
  // b comes while a's two long tests fill the worker: the shares become one slot each, but a's
  // tests keep running, so the worker holds b's job (5 s timeout) behind them.
  std::vector<TestSpec> specs = fixtures::Specs(1);
  specs[0].name = specs[0].suite = "b0";
  specs[0].timeout = seconds(5);
  RunOptions options;
  RunId id = farm.core.NewRunId();
  options.scheduler.first_lease = FarmCore::FirstLease(id);
  options.scheduler.kill_grace = seconds(1);
  options.scheduler.lease_slack = seconds(1);
  RecordingReporter b_reporter;
  auto run = std::make_unique<RunCore>(farm.clock, std::move(specs), options, b_reporter);
  RunCore* b = run.get();
  run->Start();
  farm.core.AddRun(id, std::move(run));
  farm.Tick();
  ASSERT_EQ(farm.Held("w", "b"), 1u) << "b's job waits on the worker behind a's";
  for (int i = 0; i < 60; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Heartbeat{});
    farm.Tick();
  }
  EXPECT_TRUE(b_reporter.finished.empty()) << "expired while the worker was busy with a's test";
  EXPECT_EQ(b->phase(), RunPhase::kDispatching);
  (void)a;
}

TEST(FarmCore, AResultForARunThatEndedIsDropped) {
  Farm farm;
  farm.Hello("w", 1);
  Farm::Client& a = farm.Submit(1, {}, "a");
  farm.Tick();
  ASSERT_EQ(farm.jobs["w"].size(), 1u);
  a.run->OnInterrupt();
  a.run->OnInterrupt();
  farm.clock.Advance(seconds(60));
  farm.Tick();
  farm.core.FinishRun(a.id);
  protocol::JobResult late;
  late.lease = farm.jobs["w"][0].lease;
  farm.Say("w", late);  // nobody to tell; nothing breaks
  Farm::Client& b = farm.Submit(1, {}, "b");
  farm.jobs["w"].clear();
  farm.Tick();
  farm.RunAll("w");
  farm.Tick();
  EXPECT_EQ(farm.core.FinishRun(b.id).passed, 1u);
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(FarmCore, TheDashboardSeesEachSlotsTestSinceItStartedAndTheCacheAWorkerReports) {
  Farm farm;
  Farm::Client& client = farm.Submit(3);
  farm.Hello("w", 2);
  farm.Tick();
  farm.Say("w", protocol::Heartbeat{123456});
  ASSERT_EQ(farm.jobs["w"].size(), 2u);
  for (const protocol::JobAssign& job : farm.jobs["w"])
    farm.Say("w", protocol::JobStarted{job.lease});
  farm.clock.Advance(seconds(2));
  const int64_t unix_now = 1764700000000;
  std::vector<WorkerView> workers =
      WorkersOf(farm.core, {{client.id, "run-1"}}, farm.clock.Now(), unix_now);
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].name, "w");
  EXPECT_EQ(workers[0].slots, 2u);
  EXPECT_EQ(workers[0].cache_bytes, 123456u);
  EXPECT_EQ(workers[0].heard_at_ms, unix_now - 2000);
  ASSERT_EQ(workers[0].running.size(), 2u);
  EXPECT_EQ(workers[0].running[0].run, "run-1");
  EXPECT_EQ(workers[0].running[0].since_ms, unix_now - 2000);
  RunView run = ViewOfRun(farm.core, client.id, "run-1", "nightly", "ci");
  EXPECT_EQ(run.state, "running");
  EXPECT_EQ(run.tests, 3u);
  EXPECT_EQ(run.slots, 2u);
  // A run it is not told about is not shown.
  EXPECT_TRUE(WorkersOf(farm.core, {}, farm.clock.Now(), unix_now)[0].running.empty());
}

}  // namespace
}  // namespace testfarm::coordinator
