// The run core on a fake clock: messages in, messages out, no socket and no sleeping.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/farm_core.h"
#include "coordinator/run_core.h"
#include "coordinator_run_fixtures.h"
#include "protocol/codec.h"

namespace testfarm::coordinator {
namespace {

using fixtures::RecordingReporter;
using fixtures::Spec;
using fixtures::Specs;
using std::chrono::milliseconds;
using std::chrono::seconds;

protocol::ProfileChunk Piece(uint64_t offset, uint64_t size, std::string data, bool last,
                             uint32_t merged) {
  protocol::ProfileChunk chunk;
  chunk.offset = offset;
  chunk.size = size;
  chunk.data = std::move(data);
  chunk.last = last;
  chunk.merged = merged;
  return chunk;
}

RunOptions Options() {
  RunOptions options;
  options.scheduler.kill_grace = seconds(2);
  options.scheduler.lease_slack = seconds(10);
  options.stop_slack = seconds(5);
  return options;
}

// A farm of one run core with its clock, and the workers' side of the conversation.
struct Farm : fixtures::Mailboxes {
  explicit Farm(std::vector<TestSpec> specs, RunOptions options = Options(), ProfileSink sink = {},
                std::vector<const ArtifactSet*> shipped = {})
      : core(clock, FarmOptions{.liveness = LivenessOptions{Millis(1000), 3}, .single_run = true}) {
    id = core.NewRunId();
    options.scheduler.first_lease = FarmCore::FirstLease(id);
    options.run_id = id;
    owned = std::make_unique<RunCore>(clock, std::move(specs), options, reporter,
                                      std::move(shipped), std::move(sink));
    run = owned.get();
  }

  void Start() {
    run->Start();
    core.AddRun(id, std::move(owned));
  }
  RunSummary Finish() { return core.FinishRun(id); }

  void Hello(const std::string& peer, unsigned slots, Labels labels = {}) {
    protocol::Message hello = protocol::Hello{peer, slots, "linux", "x86_64", std::move(labels)};
    core.OnMessage(peer, hello);
  }
  void Say(const std::string& peer, protocol::Message message) { core.OnMessage(peer, message); }
  void Started(const protocol::JobAssign& job, const std::string& peer) {
    Say(peer, protocol::JobStarted{job.lease});
  }
  void Finished(const protocol::JobAssign& job, const std::string& peer,
                ExitState state = ExitState::Exited(0), uint32_t profiles = 0) {
    protocol::JobResult result = fixtures::ResultOf(job, state);
    result.profiles = profiles;
    Say(peer, result);
  }
  // Ticks and sorts what the core wants sent.
  void Tick() {
    core.Tick();
    Sort(core.TakeOutbox());
  }

  FakeClock clock;
  RecordingReporter reporter;
  FarmCore core;
  RunId id = 0;
  std::unique_ptr<RunCore> owned;  // until Start
  RunCore* run = nullptr;
};

TEST(RunCore, ARunFromHelloToBye) {
  Farm farm(Specs(3));
  farm.Start();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDispatching);
  farm.Hello("w", 1);
  farm.Tick();
  EXPECT_TRUE(farm.Saw("w", "welcome"));
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 3u) << "one slot plus the prefetch window of two";
  for (const auto& job : jobs) {
    farm.Started(job, "w");
    farm.Finished(job, "w");
  }
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  EXPECT_FALSE(farm.core.NextDeadline().has_value());
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.passed, 3u);
  EXPECT_EQ(summary.total(), 3u);
  EXPECT_EQ(farm.reporter.ended, 1);
  ASSERT_NE(farm.reporter.Find("t1"), nullptr);
  EXPECT_EQ(farm.reporter.Find("t1")->worker, "w");
  // A test that started and finished between two ticks still has its START.
  EXPECT_EQ(farm.reporter.started, (std::vector<std::string>{"t0@w", "t1@w", "t2@w"}));
  farm.Tick();
  EXPECT_TRUE(farm.Saw("w", "bye"));
}

TEST(RunCore, AWholeBinaryInTheHistorysOrderStillGoesOutAsGtestsShards) {
  // Six cases of one binary, the history's order putting its slow ones first: still every
  // runnable case, so (its case time known) it goes out as gtest's own shards, not as filters.
  std::vector<TestSpec> specs;
  for (std::size_t i = 0; i < 6; ++i) {
    TestSpec spec = Spec("bin::S.c" + std::to_string(i));
    spec.suite = "bin";
    spec.gtest_case = "S.c" + std::to_string(i);
    spec.gtest_index = i;
    spec.gtest_runnable = 6;
    specs.push_back(std::move(spec));
  }
  RunOptions options = Options();
  options.batch = true;
  options.start_order = {4, 1, 5, 0, 3, 2};
  options.expected_case_time["bin"] = Millis(1);
  Farm farm(std::move(specs), options);
  farm.Start();
  farm.Hello("w", 2);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 2u) << "a shard per slot";
  std::set<std::string> cases;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    EXPECT_EQ(jobs[i].env["GTEST_TOTAL_SHARDS"], "2");
    EXPECT_EQ(jobs[i].env["GTEST_SHARD_INDEX"], std::to_string(i));
    EXPECT_EQ(jobs[i].env.count("GTEST_FILTER"), 0u) << "no filter: nothing was handed out before";
  }
  // gtest deals a shard's cases by listing position: shard 0 runs c0, c2, c4.
  farm.Started(jobs[0], "w");
  protocol::JobResult result = fixtures::ResultOf(jobs[0]);
  result.report = R"({"testsuites": [{"name": "S", "testsuite": [
      {"name": "c0", "status": "RUN", "time": "0s"}, {"name": "c2", "status": "RUN", "time": "0s"},
      {"name": "c4", "status": "RUN", "time": "0s"}]}]})";
  farm.Say("w", result);
  farm.Tick();
  ASSERT_EQ(farm.reporter.finished.size(), 3u);
  for (const char* name : {"bin::S.c0", "bin::S.c2", "bin::S.c4"}) {
    ASSERT_NE(farm.reporter.Find(name), nullptr) << name;
    EXPECT_EQ(farm.reporter.Find(name)->state, TestStatus::kPassed) << name;
  }
}

TEST(RunCore, ACrashedBatchOfManyCasesIsSplitUntilTheCrashIsAlone) {
  // Twenty cases in one batch; case 13 crashes its process. The batch's twenty run again as two
  // batches of ten, the crashing ten as two of five, and those five alone: 1 + 2 + 2 + 5 = 10
  // processes, not 1 + 20.
  std::vector<TestSpec> specs;
  for (int i = 0; i < 20; ++i) {
    TestSpec spec = Spec("bin::S.c" + std::to_string(i));
    spec.suite = "bin";
    spec.gtest_case = "S.c" + std::to_string(i);
    specs.push_back(std::move(spec));
  }
  RunOptions options = Options();
  options.batch = true;
  options.batcher.first_batch = 20;
  options.scheduler.prefetch = 0;
  Farm farm(std::move(specs), options);
  farm.Start();
  farm.Hello("w", 1);
  auto cases_of = [](const protocol::JobAssign& job) {
    std::string filter = job.argv.back();
    EXPECT_EQ(filter.rfind("--gtest_filter=", 0), 0u) << filter;
    std::vector<std::string> cases;
    std::size_t from = std::string("--gtest_filter=").size();
    while (from <= filter.size()) {
      std::size_t colon = std::min(filter.find(':', from), filter.size());
      cases.push_back(filter.substr(from, colon - from));
      from = colon + 1;
    }
    return cases;
  };
  std::vector<std::size_t> sizes;
  for (int processes = 0; processes < 30; ++processes) {
    farm.Tick();
    auto jobs = farm.TakeJobs("w");
    if (jobs.empty()) break;
    ASSERT_EQ(jobs.size(), 1u);
    farm.Started(jobs[0], "w");
    std::vector<std::string> cases = jobs[0].argv.back().rfind("--gtest_filter=", 0) == 0
                                         ? cases_of(jobs[0])
                                         : std::vector<std::string>{};
    sizes.push_back(cases.size());
    const bool crashes = std::find(cases.begin(), cases.end(), "S.c13") != cases.end();
    protocol::JobResult result = fixtures::ResultOf(
        jobs[0], crashes ? ExitState::Signaled(SIGSEGV, false) : ExitState::Exited(0));
    if (!crashes) {
      std::string report = R"({"testsuites": [{"name": "S", "testsuite": [)";
      for (std::size_t i = 0; i < cases.size(); ++i) {
        report += (i ? "," : "") + std::string(R"({"name": ")") + cases[i].substr(2) +
                  R"(", "status": "RUN", "time": "0s"})";
      }
      result.report = report + "]}]}";
    }
    farm.Say("w", result);
  }
  // Reruns go ahead of the rest: the crashing five alone before the other five.
  EXPECT_EQ(sizes, (std::vector<std::size_t>{20, 10, 10, 5, 1, 1, 1, 1, 1, 5}));
  ASSERT_EQ(farm.reporter.finished.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    const TestReport* report = farm.reporter.Find("bin::S.c" + std::to_string(i));
    ASSERT_NE(report, nullptr) << i;
    EXPECT_EQ(report->state, i == 13 ? TestStatus::kFailed : TestStatus::kPassed) << i;
    EXPECT_EQ(report->attempt, 2u) << i << ": every rerun is the second attempt";
  }
}

TEST(RunCore, StartAtAssignmentSaysStartBeforeTheWorkerHasTheJob) {
  RunOptions options = Options();
  options.start_at_assignment = true;  // --no-capture: the test writes to the terminal itself
  options.scheduler.prefetch = 0;
  Farm farm(Specs(2), options);
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(farm.reporter.started, std::vector<std::string>{"t0@w"}) << "before any word back";
  farm.Started(jobs[0], "w");
  farm.Finished(jobs[0], "w");
  farm.Tick();
  EXPECT_EQ(farm.reporter.started, (std::vector<std::string>{"t0@w", "t1@w"})) << "once each";
}

TEST(RunCore, AnInputMakesTheNextDeadlineNow) {
  Farm farm(Specs(1));
  farm.Start();
  EXPECT_FALSE(farm.core.NextDeadline().has_value()) << "no worker, nothing to wait for";
  farm.Hello("w", 1);
  EXPECT_EQ(farm.core.NextDeadline(), farm.clock.Now());
  farm.Tick();
  EXPECT_GT(*farm.core.NextDeadline(), farm.clock.Now()) << "then the heartbeat's";
}

TEST(RunCore, ASilentWorkerIsLostAndItsJobsGoToAnother) {
  Farm farm(Specs(2));
  farm.Start();
  farm.Hello("a", 1);
  farm.Tick();
  auto on_a = farm.TakeJobs("a");
  ASSERT_EQ(on_a.size(), 2u);
  farm.Started(on_a[0], "a");
  farm.Hello("b", 1);
  farm.Tick();
  EXPECT_TRUE(farm.TakeJobs("b").empty()) << "nothing left to give";
  // b keeps talking, a falls silent for three heartbeats.
  for (int i = 0; i < 3; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("b", protocol::Heartbeat{});
    farm.Tick();
  }
  EXPECT_TRUE(farm.Saw("a", "heartbeat"));
  EXPECT_EQ(farm.core.TakeGone(), std::vector<std::string>{"a"}) << "what waits for it is stale";
  auto on_b = farm.TakeJobs("b");
  ASSERT_EQ(on_b.size(), 2u) << "requeued";
  EXPECT_EQ(on_b[0].job_id, on_a[0].job_id) << "in their order, at the front";
  for (const auto& job : on_b) farm.Finished(job, "b");
  farm.Tick();
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.passed, 2u);
  ASSERT_NE(farm.reporter.Find("t0"), nullptr);
  EXPECT_EQ(farm.reporter.Find("t0")->worker, "b");
  // A result of the lost lease that arrives late is dropped, never reported twice.
  farm.Finished(on_a[0], "a", ExitState::Exited(1));
  EXPECT_EQ(farm.reporter.finished.size(), 2u);
}

TEST(RunCore, TheSuspensionGuardDoesNotBlameWorkersForOurOwnSilence) {
  Farm farm(Specs(1));
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  farm.clock.Advance(seconds(30));  // this process was stopped; the worker was not heard
  farm.Tick();
  EXPECT_TRUE(farm.core.IsWorker("w"));
  for (int i = 0; i < 3; ++i) {  // now the loop runs, and the silence is the worker's
    EXPECT_TRUE(farm.core.IsWorker("w")) << i;
    farm.clock.Advance(seconds(1));
    farm.Tick();
  }
  EXPECT_FALSE(farm.core.IsWorker("w"));
}

TEST(RunCore, AJobThatTakesDownTwoWorkersIsQuarantined) {
  Farm farm({Spec("killer"), Spec("fine")});
  farm.Start();
  for (const char* w : {"a", "b", "c"}) farm.Hello(w, 1);
  farm.Tick();
  std::string holder;
  for (const char* w : {"a", "b", "c"}) {
    for (const auto& job : farm.TakeJobs(w)) {
      if (job.name == "killer") holder = w;
      farm.Started(job, w);
      if (job.name == "fine") farm.Finished(job, w);
    }
  }
  ASSERT_FALSE(holder.empty());
  farm.core.OnUnreachable(holder);  // it died with the killer running
  farm.Tick();
  std::string second;
  for (const char* w : {"a", "b", "c"}) {
    for (const auto& job : farm.TakeJobs(w)) {
      ASSERT_EQ(job.name, "killer");
      second = w;
      farm.Started(job, w);
    }
  }
  ASSERT_FALSE(second.empty()) << "requeued once";
  ASSERT_NE(second, holder);
  farm.core.OnUnreachable(second);
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone) << "not requeued a third time";
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.passed, 1u);
  EXPECT_EQ(summary.failed, 1u);
  const TestReport* killer = farm.reporter.Find("killer");
  ASSERT_NE(killer, nullptr);
  EXPECT_NE(killer->reason.find("worker lost"), std::string::npos) << killer->reason;
  EXPECT_NE(killer->reason.find(holder), std::string::npos) << killer->reason;
}

TEST(RunCore, AStartedTestThatNeverReportsExpiresAfterItsAllowance) {
  Farm farm({Spec("slow", seconds(1))});
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  for (int i = 0; i < 30; ++i) {  // 30 s fetching its files: progress, not its clock
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Fetch{std::string(64, 'a'), uint64_t(i) * 1024, 1024});
    farm.Tick();
  }
  EXPECT_EQ(farm.run->phase(), RunPhase::kDispatching);
  EXPECT_TRUE(farm.cancels["w"].empty());
  farm.Started(jobs[0], "w");
  farm.Tick();
  ASSERT_TRUE(farm.core.NextDeadline().has_value());
  // timeout 1 s + kill grace 2 s + slack 10 s, with the worker alive all along.
  for (int i = 0; i < 13; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Heartbeat{});
    farm.Tick();
  }
  EXPECT_EQ(farm.cancels["w"], std::vector<uint64_t>{jobs[0].lease});
  RunSummary summary = farm.Finish();
  const TestReport* slow = farm.reporter.Find("slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->state, TestStatus::kExpired);
  EXPECT_EQ(summary.failed, 1u);
}

TEST(RunCore, AHeldTestItsWorkerNeverStartsExpiresInsteadOfHoldingTheRun) {
  Farm farm({Spec("stuck", seconds(1))});
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  // Alive (heartbeats) but never starting it, nor fetching anything: 1 s + 2 s + 10 s.
  for (int i = 0; i < 13; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Heartbeat{});
    farm.Tick();
  }
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  EXPECT_EQ(farm.cancels["w"], std::vector<uint64_t>{jobs[0].lease});
  RunSummary summary = farm.Finish();
  ASSERT_NE(farm.reporter.Find("stuck"), nullptr);
  EXPECT_EQ(farm.reporter.Find("stuck")->state, TestStatus::kExpired);
  EXPECT_EQ(summary.failed, 1u);
}

TEST(RunCore, AnInterruptCancelsAndGivesUpAfterTheKillGraceAndTheSlack) {
  Farm farm(Specs(4));
  farm.Start();
  farm.Hello("w", 2);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 4u);
  farm.Started(jobs[0], "w");
  farm.Started(jobs[1], "w");
  farm.Finished(jobs[2], "w");  // a third one finished before the interrupt
  farm.run->OnInterrupt();
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kStopping);
  EXPECT_EQ(farm.cancels["w"].size(), 3u) << "every lease still held";
  farm.Finished(jobs[0], "w", ExitState::Cancelled("the run was stopped"));
  farm.run->OnInterrupt();  // the same signal again, at once: not a second one
  // The worker never confirms the other two: given up on after 2 s + 5 s, heartbeats aside.
  for (int i = 0; i < 6; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Heartbeat{});
    farm.Tick();
    EXPECT_EQ(farm.run->phase(), RunPhase::kStopping) << i;
  }
  farm.clock.Advance(seconds(1));
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_TRUE(summary.interrupted);
  EXPECT_EQ(summary.stop_reason, "interrupted");
  EXPECT_EQ(summary.passed, 1u);
  EXPECT_EQ(summary.cancelled, 3u);
  EXPECT_EQ(summary.total(), 4u);
  EXPECT_EQ(farm.reporter.finished.size(), 4u);
}

TEST(RunCore, ASecondInterruptStopsWaitingAtOnce) {
  Farm farm(Specs(1));
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  farm.Started(farm.TakeJobs("w").at(0), "w");
  farm.run->OnInterrupt();
  farm.Tick();
  farm.clock.Advance(milliseconds(1500));
  farm.run->OnInterrupt();
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  EXPECT_EQ(farm.Finish().cancelled, 1u);
}

TEST(RunCore, WaitWorkersHoldsDispatchThenGoesOnWithWhoeverCame) {
  RunOptions options = Options();
  options.min_workers = 2;
  options.wait_workers = seconds(5);
  Farm farm(Specs(2), options);
  farm.Start();
  farm.Hello("a", 1);
  farm.Tick();
  EXPECT_TRUE(farm.TakeJobs("a").empty()) << "waiting for the second worker";
  EXPECT_LE(*farm.core.NextDeadline(), farm.clock.Now() + seconds(5));
  farm.clock.Advance(seconds(1));
  farm.Say("a", protocol::Heartbeat{});
  farm.Tick();
  EXPECT_TRUE(farm.TakeJobs("a").empty());
  farm.clock.Advance(seconds(4));
  farm.Say("a", protocol::Heartbeat{});
  farm.Tick();
  EXPECT_EQ(farm.TakeJobs("a").size(), 2u) << "the wait is over: one worker will do";
}

TEST(RunCore, WaitWorkersWithNobodyStopsWithEveryTestNotRun) {
  RunOptions options = Options();
  options.wait_workers = seconds(5);
  Farm farm(Specs(2), options);
  farm.Start();
  EXPECT_EQ(farm.core.NextDeadline(), farm.clock.Now() + seconds(5));
  farm.clock.Advance(seconds(5));
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.not_run, 2u);
  ASSERT_NE(farm.reporter.Find("t0"), nullptr);
  EXPECT_EQ(farm.reporter.Find("t0")->reason, "the run stopped: no worker joined within 5.00s");
}

TEST(RunCore, ATestNoWorkerCanTakeFailsOnceTheWaitIsOver) {
  RunOptions options = Options();
  options.wait_workers = seconds(2);
  TestSpec gpu = Spec("gpu");
  gpu.EditSettings().required_labels = {{"gpu", "1"}};
  Farm farm({gpu, Spec("cpu")}, options);
  farm.Start();
  farm.Hello("w", 1, {{"arch", "x86_64"}});
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].name, "cpu");
  farm.Finished(jobs[0], "w");
  farm.Tick();
  EXPECT_EQ(farm.reporter.Find("gpu"), nullptr) << "a gpu worker may still come";
  farm.clock.Advance(seconds(2));
  farm.Say("w", protocol::Heartbeat{});
  farm.Tick();
  const TestReport* failed = farm.reporter.Find("gpu");
  ASSERT_NE(failed, nullptr);
  EXPECT_EQ(failed->state, TestStatus::kFailed);
  EXPECT_EQ(failed->reason, "no connected worker has the labels it requires: gpu=1");
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
}

TEST(RunCore, EveryWorkerLostStopsTheRunWithTheRestNotRun) {
  Farm farm(Specs(5));
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  farm.Started(jobs[0], "w");
  farm.Say("w", protocol::Bye{"leaving"});
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.stop_reason, "every worker was lost");
  EXPECT_EQ(summary.not_run, 5u);
  EXPECT_EQ(summary.total(), 5u);
}

// The run starts, worker `peer` (one slot) runs every test, each leaving a raw profile: the
// run then collects the worker's merged profile.
template <typename Farm>
void RunOneTestWithAProfile(Farm& farm, const std::string& peer) {
  farm.Start();
  farm.Hello(peer, 1);
  farm.Tick();
  for (const auto& job : farm.TakeJobs(peer)) {
    farm.Started(job, peer);
    farm.Finished(job, peer, ExitState::Exited(0), /*profiles=*/1);
  }
  farm.Tick();
}

// A worker's profile is pulled a piece at a time with at most 4 requests in flight: the worker
// never has to queue it whole.
TEST(RunCore, AProfileIsPulledWithAtMostFourPiecesInFlight) {
  RunOptions options = Options();
  options.coverage = true;
  std::string kept;
  std::vector<std::size_t> handed;  // the sizes of the pieces handed over, as they came
  Farm farm(Specs(1), options,
            [&](std::size_t, uint64_t offset, uint64_t total,
                std::string_view data) -> Result<std::filesystem::path> {
              EXPECT_EQ(offset, kept.size());
              kept += data;
              handed.push_back(data.size());
              return std::filesystem::path(offset + data.size() == total ? "p0" : "");
            });
  RunOneTestWithAProfile(farm, "a");
  auto offsets = [&] {
    std::vector<uint64_t> asked;
    for (const auto& request : farm.Heard<protocol::ProfileRequest>("a")) {
      asked.push_back(request.offset / protocol::kMaxChunkBytes);
    }
    return asked;
  };
  ASSERT_EQ(offsets(), std::vector<uint64_t>{0}) << "the first piece, once merged";
  constexpr uint64_t kPiece = protocol::kMaxChunkBytes;
  const uint64_t size = 6 * kPiece + 10;  // 7 pieces
  auto piece = [&](uint64_t index) {
    uint64_t offset = index * kPiece;
    std::string data(std::min(kPiece, size - offset), static_cast<char>('a' + index));
    return Piece(offset, size, data, offset + data.size() == size, 1);
  };
  farm.Say("a", piece(0));
  farm.Tick();
  EXPECT_EQ(offsets(), (std::vector<uint64_t>{0, 1, 2, 3, 4})) << "four in flight";
  EXPECT_EQ(kept.size(), kPiece) << "handed on as it came, not held until whole";
  farm.Say("a", piece(1));
  farm.Tick();
  EXPECT_EQ(offsets(), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
  for (uint64_t i = 2; i < 7; ++i) farm.Say("a", piece(i));
  farm.Tick();
  EXPECT_EQ(offsets(), (std::vector<uint64_t>{0, 1, 2, 3, 4, 5, 6})) << "each piece asked once";
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_TRUE(summary.coverage.errors.empty());
  ASSERT_EQ(kept.size(), size);
  EXPECT_EQ(kept[6 * kPiece], 'g');
  EXPECT_EQ(handed.size(), 7u);
  ASSERT_EQ(summary.coverage.profiles.size(), 1u);
  EXPECT_EQ(summary.coverage.profiles[0], "p0");
}

// A sink with credit (a farm relaying to a client): the pieces asked of the worker stay within
// the room it has, and more are asked for when it has room again.
TEST(RunCore, AProfileSinkWithCreditHoldsBackThePullsUntilItHasRoom) {
  RunOptions options = Options();
  options.coverage = true;
  // Like a farm relaying to its client: room for 3 pieces not yet acknowledged.
  constexpr std::size_t kWindow = 3;
  std::size_t handed = 0;
  std::size_t acked = 0;
  Farm farm(Specs(1), options,
            [&](std::size_t, uint64_t offset, uint64_t total,
                std::string_view data) -> Result<std::filesystem::path> {
              ++handed;
              return std::filesystem::path(offset + data.size() == total ? "p0" : "");
            });
  farm.run->SetProfileRoom([&] { return kWindow - (handed - acked); });
  RunOneTestWithAProfile(farm, "a");
  constexpr uint64_t kPiece = protocol::kMaxChunkBytes;
  const uint64_t size = 6 * kPiece;  // 6 pieces
  auto piece = [&](uint64_t index) {
    return Piece(index * kPiece, size, std::string(kPiece, 'x'), index == 5, 1);
  };
  auto asked = [&] { return farm.Heard<protocol::ProfileRequest>("a").size(); };
  ASSERT_EQ(asked(), 1u) << "the first piece";
  farm.Say("a", piece(0));
  farm.Tick();
  EXPECT_EQ(asked(), 3u) << "two more: the room left, below the window of four";
  farm.Say("a", piece(1));
  farm.Say("a", piece(2));
  farm.Tick();
  EXPECT_EQ(asked(), 3u) << "three handed on, none acknowledged: no room, nothing more asked";
  acked = 3;  // the reader caught up
  farm.run->ResumeProfiles();
  farm.Tick();
  EXPECT_EQ(asked(), 6u) << "the rest once there is room";
  for (uint64_t i = 3; i < 6; ++i) farm.Say("a", piece(i));
  farm.Tick();
  EXPECT_EQ(handed, 6u);
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_TRUE(summary.coverage.errors.empty());
  ASSERT_EQ(summary.coverage.profiles.size(), 1u);
}

// The workers' first pieces count against the sink's room too (a thousand workers' first pieces
// must not all come at once to a client with room for a few), and what a lost worker was asked
// for stops counting.
TEST(RunCore, FirstPiecesStayWithinTheSinksRoomAndALostWorkersShareGoesToTheOthers) {
  RunOptions options = Options();
  options.coverage = true;
  constexpr std::size_t kWindow = 2;  // and nothing is acknowledged
  std::size_t handed = 0;
  Farm farm(Specs(3), options,
            [&](std::size_t index, uint64_t offset, uint64_t total,
                std::string_view data) -> Result<std::filesystem::path> {
              ++handed;
              if (offset + data.size() < total) return std::filesystem::path();
              return std::filesystem::path("p" + std::to_string(index));
            });
  farm.run->SetProfileRoom([&] { return handed < kWindow ? kWindow - handed : 0; });
  farm.Start();
  for (const char* w : {"a", "b", "c"}) farm.Hello(w, 1);
  farm.Tick();
  for (const char* w : {"a", "b", "c"}) {
    for (const auto& job : farm.TakeJobs(w)) {
      farm.Started(job, w);
      farm.Finished(job, w, ExitState::Exited(0), /*profiles=*/1);
    }
  }
  farm.Tick();
  ASSERT_EQ(farm.run->phase(), RunPhase::kCollectingProfiles);
  auto asked = [&](const std::string& w) { return farm.Heard<protocol::ProfileRequest>(w).size(); };
  EXPECT_EQ(asked("a") + asked("b") + asked("c"), kWindow) << "two first pieces, not three";
  EXPECT_EQ(asked("c"), 0u);
  // b leaves before it answers: its request no longer holds the room, and c is asked.
  farm.Say("b", protocol::Bye{});
  farm.Tick();
  EXPECT_EQ(asked("c"), 1u);
  farm.Say("a", Piece(0, 1, "x", true, 1));
  farm.Tick();
  EXPECT_EQ(handed, 1u);
  farm.Say("c", Piece(0, 1, "y", true, 1));
  farm.Tick();
  EXPECT_EQ(handed, 2u);
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone) << "b is gone: nothing more to wait for";
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.coverage.profiles.size(), 2u);
  ASSERT_EQ(summary.coverage.errors.size(), 1u) << "b's profile never came, and that is said";
  EXPECT_EQ(summary.coverage.errors[0].rfind("b: ", 0), 0u) << summary.coverage.errors[0];
}

TEST(RunCore, ProfilesAreCollectedFromEveryWorkerAfterTheLastResult) {
  RunOptions options = Options();
  options.coverage = true;
  std::map<std::size_t, std::string> kept;
  Farm farm(Specs(2), options,
            [&](std::size_t index, uint64_t offset, uint64_t size,
                std::string_view data) -> Result<std::filesystem::path> {
              kept[index] += data;
              if (offset + data.size() < size) return std::filesystem::path();
              return std::filesystem::path("p" + std::to_string(index));
            });
  farm.Start();
  farm.Hello("a", 1);
  farm.Hello("b", 1);
  farm.Tick();
  for (const char* w : {"a", "b"}) {
    for (const auto& job : farm.TakeJobs(w)) {
      farm.Started(job, w);
      farm.Finished(job, w, ExitState::Exited(0), /*profiles=*/3);
    }
  }
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kCollectingProfiles);
  EXPECT_TRUE(farm.Saw("a", "profile_request"));
  EXPECT_TRUE(farm.Saw("b", "profile_request"));
  farm.Hello("late", 1);
  farm.Tick();
  EXPECT_TRUE(farm.Saw("late", "bye")) << "a worker arriving now has nothing to do";
  farm.Say("a", Piece(0, 4, "ab", false, 0));
  farm.Say("a", Piece(2, 4, "cd", true, 3));
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kCollectingProfiles) << "b has not answered";
  farm.clock.Advance(milliseconds(700));
  farm.Say("b", Piece(0, 1, "x", true, 3));
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_EQ(kept.size(), 2u);
  EXPECT_EQ(kept[0], "abcd");
  EXPECT_EQ(kept[1], "x");
  EXPECT_EQ(summary.coverage.raw_profiles, 6u);
  EXPECT_EQ(summary.coverage.merged, 6u);
  EXPECT_EQ(summary.coverage.profiles.size(), 2u);
  EXPECT_TRUE(summary.coverage.errors.empty());
  EXPECT_EQ(summary.coverage.collect, milliseconds(700));
}

TEST(RunCore, AProfileTheSinkCannotKeepIsAnErrorAndItsLaterPiecesAreNotHandedOn) {
  RunOptions options = Options();
  options.coverage = true;
  int calls = 0;
  Farm farm(Specs(1), options,
            [&](std::size_t, uint64_t offset, uint64_t,
                std::string_view) -> Result<std::filesystem::path> {
              ++calls;
              if (offset > 0) return Error{"cannot write worker-0.profdata: disk full"};
              return std::filesystem::path();
            });
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto job = farm.TakeJobs("w").at(0);
  farm.Started(job, "w");
  farm.Finished(job, "w", ExitState::Exited(0), 1);
  farm.Tick();
  farm.Say("w", Piece(0, 6, "ab", false, 0));
  farm.Say("w", Piece(2, 6, "cd", false, 0));
  farm.Say("w", Piece(4, 6, "ef", true, 1));
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_EQ(calls, 2);
  EXPECT_TRUE(summary.coverage.profiles.empty());
  ASSERT_EQ(summary.coverage.errors.size(), 1u);
  EXPECT_NE(summary.coverage.errors[0].find("disk full"), std::string::npos);
}

TEST(RunCore, AWorkerLostWhileCollectingIsReportedNotWaitedFor) {
  RunOptions options = Options();
  options.coverage = true;
  Farm farm(Specs(1), options,
            [](std::size_t, uint64_t, uint64_t, std::string_view) -> Result<std::filesystem::path> {
              return std::filesystem::path("p");
            });
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto job = farm.TakeJobs("w").at(0);
  farm.Finished(job, "w", ExitState::Exited(0), 1);
  farm.Tick();
  ASSERT_EQ(farm.run->phase(), RunPhase::kCollectingProfiles);
  for (int i = 0; i < 3; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Tick();
  }
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  ASSERT_EQ(summary.coverage.errors.size(), 1u);
  EXPECT_NE(summary.coverage.errors[0].find("its profile never came"), std::string::npos);
}

TEST(RunCore, UnexpectedMessagesAreAnsweredWithAnError) {
  Farm farm(Specs(1));
  farm.Start();
  farm.Hello("w", 1);
  farm.Say("w", protocol::Welcome{"confused"});
  farm.Tick();
  EXPECT_TRUE(farm.Saw("w", "error"));
  farm.Hello("w", 1);  // twice: ignored
  EXPECT_EQ(farm.reporter.joined.size(), 1u);
  farm.Hello("z", 0);
  farm.Tick();
  EXPECT_TRUE(farm.Saw("z", "error")) << "zero slots";
  EXPECT_FALSE(farm.core.IsWorker("z"));
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(RunCoreRetries, AFailedAttemptRunsAgainOnAnotherWorkerAndAPassThenIsFlaky) {
  std::vector<TestSpec> specs = {fixtures::Spec("t")};
  specs[0].retries = 2;
  Farm farm(specs);
  farm.Start();
  farm.Hello("w1", 1);
  farm.Tick();
  auto first = farm.TakeJobs("w1");
  ASSERT_EQ(first.size(), 1u);
  farm.Hello("w2", 1);  // joins after the first attempt went out
  farm.Started(first[0], "w1");
  farm.Finished(first[0], "w1", ExitState::Exited(1));
  farm.Tick();
  EXPECT_TRUE(farm.TakeJobs("w1").empty()) << "the retry avoids the worker it failed on";
  auto second = farm.TakeJobs("w2");
  ASSERT_EQ(second.size(), 1u);
  farm.Started(second[0], "w2");
  farm.Finished(second[0], "w2");
  farm.Tick();
  EXPECT_EQ(farm.run->phase(), RunPhase::kDone);
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.flaky, 1u);
  EXPECT_EQ(summary.failed, 0u);
  EXPECT_EQ(summary.total(), 1u);
  ASSERT_EQ(summary.reports.size(), 2u);
  EXPECT_TRUE(summary.reports[0].retried);
  EXPECT_EQ(summary.reports[0].attempt, 1u);
  EXPECT_EQ(summary.reports[0].worker, "w1");
  EXPECT_EQ(summary.reports[1].state, TestStatus::kFlaky);
  EXPECT_EQ(summary.reports[1].attempt, 2u);
  EXPECT_EQ(summary.reports[1].worker, "w2");
}

TEST(RunCoreRetries, WithOneWorkerTheRetryRunsThereAndARetriedFailureIsNotAFailFastFailure) {
  std::vector<TestSpec> specs = {fixtures::Spec("t"), fixtures::Spec("u")};
  specs[0].retries = 1;
  RunOptions options = Options();
  options.scheduler.max_failures = 1;  // --fail-fast
  options.scheduler.prefetch = 0;
  Farm farm(specs, options);
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto first = farm.TakeJobs("w");
  ASSERT_EQ(first.size(), 1u);
  farm.Started(first[0], "w");
  farm.Finished(first[0], "w", ExitState::Exited(1));
  farm.Tick();
  auto retry = farm.TakeJobs("w");
  ASSERT_EQ(retry.size(), 1u) << "the retry goes first, to the only worker";
  farm.Started(retry[0], "w");
  farm.Finished(retry[0], "w", ExitState::Exited(1));  // fails again: now it counts
  farm.Tick();
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.failed, 1u);
  EXPECT_EQ(summary.not_run, 1u) << "--fail-fast stopped the run at the last attempt's failure";
  EXPECT_EQ(summary.total(), 2u);
}

TEST(RunCoreRetries, ATestOthersWaitOnIsNotRetried) {
  std::vector<TestSpec> specs = {fixtures::Spec("setup"), fixtures::Spec("user")};
  specs[0].retries = 3;
  specs[0].EditSettings().ordering.fixtures_setup = {"db"};
  specs[1].EditSettings().ordering.fixtures_required = {"db"};
  Farm farm(specs);
  farm.Start();
  farm.Hello("w", 1);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  farm.Started(jobs[0], "w");
  farm.Finished(jobs[0], "w", ExitState::Exited(1));
  farm.Tick();
  RunSummary summary = farm.Finish();
  EXPECT_EQ(summary.failed, 1u);
  EXPECT_EQ(summary.not_run, 1u);
  EXPECT_EQ(summary.reports.size(), 2u) << "no retried attempt";
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

// Runs every job the worker "w" (one slot, no prefetch) is given, each taking `each` on the fake
// clock and failing when `fails(test name, iteration)` says so, until the run is done.
RunSummary RunRepeated(Farm& farm, Millis each,
                       const std::function<bool(const std::string&, unsigned)>& fails) {
  farm.Start();
  farm.Hello("w", 1);
  std::map<std::string, unsigned> seen;  // name -> iterations handed out
  for (int steps = 0; steps < 1000 && farm.run->phase() != RunPhase::kDone; ++steps) {
    farm.Tick();
    for (const protocol::JobAssign& job : farm.TakeJobs("w")) {
      const unsigned iteration = ++seen[job.name];
      farm.Started(job, "w");
      farm.clock.Advance(each);
      farm.Finished(job, "w",
                    fails(job.name, iteration) ? ExitState::Exited(1) : ExitState::Exited(0));
    }
  }
  return farm.Finish();
}

RunOptions OneAtATime(RepeatOptions repeat) {
  RunOptions options = Options();
  options.scheduler.prefetch = 0;
  options.repeat = repeat;
  return options;
}

TEST(RunCoreRepeats, EveryIterationOfEveryTestIsATestOfItsOwn) {
  Farm farm(fixtures::Specs(2), OneAtATime(RepeatOptions{.iterations = 3}));
  RunSummary summary =
      RunRepeated(farm, Millis(10), [](const std::string&, unsigned) { return false; });
  EXPECT_EQ(summary.iterations, 3u);
  EXPECT_EQ(summary.passed, 6u);
  EXPECT_EQ(summary.total(), 6u);
  std::map<std::string, std::vector<unsigned>> iterations;
  for (const TestReport& r : summary.reports) iterations[r.name].push_back(r.iteration);
  EXPECT_EQ(iterations["t0"], (std::vector<unsigned>{1, 2, 3}));
  EXPECT_EQ(iterations["t1"], (std::vector<unsigned>{1, 2, 3}));
}

TEST(RunCoreRepeats, UntilFailStartsNoIterationAfterTheFirstFailureAndSaysWhich) {
  Farm farm(fixtures::Specs(2), OneAtATime(RepeatOptions{.iterations = 0, .until_fail = true}));
  RunSummary summary = RunRepeated(
      farm, Millis(10), [](const std::string& name, unsigned i) { return name == "t1" && i == 4; });
  EXPECT_EQ(summary.iterations, 4u);
  EXPECT_EQ(summary.failed, 1u);
  EXPECT_EQ(summary.passed, 7u);
  EXPECT_EQ(summary.total(), 8u);
  EXPECT_EQ(summary.stop_reason,
            "--until-fail: iteration 4 failed (t1); no iteration started after that");
  // With --repeat N as well, at most N iterations.
  Farm bounded(fixtures::Specs(1), OneAtATime(RepeatOptions{.iterations = 5, .until_fail = true}));
  RunSummary five =
      RunRepeated(bounded, Millis(10), [](const std::string&, unsigned) { return false; });
  EXPECT_EQ(five.iterations, 5u);
  EXPECT_EQ(five.passed, 5u);
  EXPECT_TRUE(five.stop_reason.empty());
}

TEST(RunCoreRepeats, AStressDurationStartsNoIterationPastItsEnd) {
  // 4 s per iteration in 10 s: iterations start at 0, 4 and 8 s; none at 12 s.
  Farm farm(fixtures::Specs(1),
            OneAtATime(RepeatOptions{.iterations = 0, .duration = Millis(10000)}));
  RunSummary summary =
      RunRepeated(farm, Millis(4000), [](const std::string&, unsigned) { return false; });
  EXPECT_EQ(summary.iterations, 3u);
  EXPECT_EQ(summary.passed, 3u);
  // And --repeat N bounds it too.
  Farm bounded(fixtures::Specs(1),
               OneAtATime(RepeatOptions{.iterations = 2, .duration = Millis(10000)}));
  EXPECT_EQ(RunRepeated(bounded, Millis(1000), [](const std::string&, unsigned) { return false; })
                .iterations,
            2u);
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(RunCoreRepeats, NothingToRunIsNotRepeatedForeverAndAnUnrunnableTestEndsUntilFail) {
  std::vector<TestSpec> skipped = {fixtures::Spec("off")};
  skipped[0].skip_reason = "disabled";
  Farm idle(skipped, OneAtATime(RepeatOptions{.iterations = 0, .duration = Millis(60000)}));
  RunSummary none =
      RunRepeated(idle, Millis(10), [](const std::string&, unsigned) { return false; });
  EXPECT_EQ(none.iterations, 1u);
  EXPECT_EQ(none.skipped_tests, 1u);

  std::vector<TestSpec> broken = fixtures::Specs(1);
  broken[0].cannot_run = "no such command";
  Farm until(broken, OneAtATime(RepeatOptions{.iterations = 0, .until_fail = true}));
  RunSummary once =
      RunRepeated(until, Millis(10), [](const std::string&, unsigned) { return false; });
  EXPECT_EQ(once.iterations, 1u);
  EXPECT_EQ(once.failed, 1u);
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(RunCoreRepeats, EveryIterationShipsTheFilesItsTestNeeds) {
  ArtifactSet files;
  files.root = "/src/build";
  files.files.push_back(protocol::ArtifactFile{});
  files.files.back().path = "bin/t0";
  Farm farm(fixtures::Specs(1), OneAtATime(RepeatOptions{.iterations = 3}), {}, {&files});
  farm.Start();
  farm.Hello("w", 1);
  std::vector<uint64_t> sets;
  for (int steps = 0; steps < 100 && farm.run->phase() != RunPhase::kDone; ++steps) {
    farm.Tick();
    for (const protocol::JobAssign& job : farm.TakeJobs("w")) {
      sets.push_back(job.artifact_set);
      EXPECT_TRUE(job.artifacts.empty()) << "named by its set, not listed";
      farm.Started(job, "w");
      farm.Finished(job, "w");
    }
  }
  ASSERT_EQ(sets.size(), 3u);
  EXPECT_NE(sets[0], 0u);
  EXPECT_EQ(sets, (std::vector<uint64_t>{sets[0], sets[0], sets[0]}));
  EXPECT_EQ(farm.Finish().passed, 3u);
}

TEST(RunCore, AJobNamesItsFileSetAndAWorkerAsksForTheFilesOnce) {
  ArtifactSet one;
  one.root = "/src/build";
  one.files.push_back(protocol::ArtifactFile{"bin/t0", std::string(64, 'a'), 10, true});
  one.library_dirs = {"lib"};
  ArtifactSet two;
  two.root = "/src/other";
  two.files.push_back(protocol::ArtifactFile{"t1", std::string(64, 'b'), 20, true});
  two.files.push_back(protocol::ArtifactFile{"data.txt", std::string(64, 'c'), 30, false});
  // Tests 0 and 2 share a set; test 1 has its own; test 3 ships nothing.
  Farm farm(fixtures::Specs(4), Options(), {}, {&one, &two, &one, nullptr});
  farm.Start();
  farm.Hello("w", 4);
  farm.Tick();
  std::map<std::string, uint64_t> set_of;
  for (const protocol::JobAssign& job : farm.TakeJobs("w")) {
    EXPECT_TRUE(job.artifacts.empty());
    EXPECT_TRUE(job.artifact_root.empty());
    set_of[job.name] = job.artifact_set;
  }
  ASSERT_EQ(set_of.size(), 4u);
  EXPECT_EQ(set_of["t0"], set_of["t2"]);
  EXPECT_NE(set_of["t0"], set_of["t1"]);
  EXPECT_NE(set_of["t0"], 0u);
  EXPECT_EQ(set_of["t3"], 0u) << "nothing to ship";

  farm.Say("w", protocol::SetRequest{farm.id, set_of["t1"]});
  farm.Say("w", protocol::SetRequest{farm.id, set_of["t0"]});
  farm.Say("w", protocol::SetRequest{farm.id, 99});
  farm.Say("w", protocol::SetRequest{farm.id + 1, set_of["t0"]});
  farm.Tick();
  auto manifests = farm.Heard<protocol::SetManifest>("w");
  ASSERT_EQ(manifests.size(), 4u);
  auto answer = [&](uint64_t run, uint64_t set) {
    for (const protocol::SetManifest& m : manifests) {
      if (m.run == run && m.set == set) return m;
    }
    ADD_FAILURE() << "no answer for set " << set << " of run " << run;
    return protocol::SetManifest{};
  };
  protocol::SetManifest for_t1 = answer(farm.id, set_of["t1"]);
  EXPECT_EQ(for_t1.root, "/src/other");
  EXPECT_EQ(for_t1.files, two.files);
  protocol::SetManifest for_t0 = answer(farm.id, set_of["t0"]);
  EXPECT_EQ(for_t0.root, "/src/build");
  EXPECT_EQ(for_t0.files, one.files);
  EXPECT_EQ(for_t0.library_dirs, one.library_dirs);
  EXPECT_TRUE(for_t0.error.empty());
  protocol::SetManifest unknown = answer(farm.id, 99);
  EXPECT_NE(unknown.error.find("no file set 99"), std::string::npos) << unknown.error;
  protocol::SetManifest other_run = answer(farm.id + 1, set_of["t0"]);
  EXPECT_EQ(other_run.error, "the run has ended") << "a run that is not the farm's";
  EXPECT_TRUE(other_run.files.empty());
}

TEST(RunCore, AJobOfAFileSetIsAFewHundredBytesWhateverTheSetHolds) {
  ArtifactSet big;
  big.root = "/src/build";
  for (int i = 0; i < 1000; ++i) {
    big.files.push_back(protocol::ArtifactFile{"data/file" + std::to_string(i) + ".bin",
                                               std::string(64, 'a'), 4096, false});
  }
  Farm farm(fixtures::Specs(2), Options(), {}, {&big, &big});
  farm.Start();
  farm.Hello("w", 2);
  farm.Tick();
  auto jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 2u);
  for (const protocol::JobAssign& job : jobs) {
    EXPECT_LT(protocol::EncodeBody(job).size(), 512u);
  }
  farm.Say("w", protocol::SetRequest{farm.id, jobs[0].artifact_set});
  farm.Tick();
  auto manifests = farm.Heard<protocol::SetManifest>("w");
  ASSERT_EQ(manifests.size(), 1u);
  EXPECT_GT(protocol::EncodeBody(manifests[0]).size(), 100'000u) << "the list goes once";
}

}  // namespace
}  // namespace testfarm::coordinator
