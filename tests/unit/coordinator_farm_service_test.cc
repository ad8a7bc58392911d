// The farm service on a fake clock: clients submit, hear only of their own runs, leave; the
// farm queues, refuses and reports its status. No socket, no file.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/farm_service.h"
#include "coordinator/farm_wire.h"
#include "coordinator_run_fixtures.h"

namespace testfarm::coordinator {
namespace {

using std::chrono::seconds;

class MemoryStore : public BlobStore {
 public:
  bool Has(const std::string& sha256) override { return blobs.count(sha256) != 0; }
  Status Receive(const std::string& peer, const protocol::Upload& piece) override {
    if (piece.offset + piece.data.size() != piece.size) return Ok{};
    if (defer) {
      pending.emplace_back(peer, piece.sha256);  // verified when the test says
    } else {
      blobs.insert(piece.sha256);
    }
    return Ok{};
  }
  bool Verifying(const std::string& peer) const override {
    return std::any_of(pending.begin(), pending.end(),
                       [&](const auto& p) { return p.first == peer; });
  }
  bool defer = false;
  std::vector<std::pair<std::string, std::string>> pending;  // (peer, sha256) being verified
  void Forget(const std::string& peer) override { forgotten.push_back(peer); }
  std::set<std::string> blobs;
  std::vector<std::string> forgotten;
};

struct Farm : fixtures::Mailboxes {
  explicit Farm(std::size_t max_runs = 8, std::size_t max_queued = 4)
      : service(clock,
                FarmServiceOptions{.liveness = LivenessOptions{seconds(1), 3},
                                   .max_runs = max_runs,
                                   .max_queued = max_queued,
                                   .run_defaults = {}},
                store) {}

  void Say(const std::string& peer, protocol::Message message) { service.OnMessage(peer, message); }
  void Hello(const std::string& peer, unsigned slots) {
    Say(peer, protocol::Hello{peer, slots, "linux", "x86_64", {}});
  }
  // Submits `tests` plain tests named PREFIX0.. in one part.
  void Submit(const std::string& client, int tests, uint32_t max_slots = 0,
              std::vector<protocol::FileSet> sets = {}) {
    protocol::Submit submit;
    submit.client = client;
    submit.test_count = static_cast<uint64_t>(tests);
    submit.max_slots = max_slots;
    submit.has_prefetch = true;  // exactly the granted slots
    Say(client, submit);
    protocol::SubmitPart part;
    for (TestSpec& spec : fixtures::Specs(tests)) {
      spec.name = spec.suite = client + "-" + spec.name;
      part.tests.push_back(ToWire(spec, sets.empty() ? 0 : 1));
    }
    part.file_sets = std::move(sets);
    part.last = true;
    Say(client, part);
  }
  void Tick() {
    service.Tick();
    Sort(service.TakeOutbox());
  }
  void RunAll(const std::string& worker) {
    for (const protocol::JobAssign& job : std::exchange(jobs[worker], {})) {
      Say(worker, protocol::JobStarted{job.lease});
      Say(worker, fixtures::ResultOf(job));
    }
  }

  FakeClock clock;
  MemoryStore store;
  FarmService service;
};

TEST(FarmService, TwoClientsEachHearOnlyOfTheirOwnTests) {
  Farm farm;
  farm.Hello("w", 2);
  farm.Submit("a", 3);
  farm.Submit("b", 3);
  for (int round = 0; round < 10; ++round) {
    farm.Tick();
    farm.RunAll("w");
  }
  farm.Tick();
  for (const char* client : {"a", "b"}) {
    auto accepted = farm.Heard<protocol::Accepted>(client);
    ASSERT_EQ(accepted.size(), 1u);
    EXPECT_TRUE(accepted[0].error.empty());
    auto done = farm.Heard<protocol::TestDone>(client);
    ASSERT_EQ(done.size(), 3u) << client;
    std::set<uint64_t> indices;
    for (const auto& d : done) {
      EXPECT_EQ(d.state, "passed");
      indices.insert(d.test);
    }
    EXPECT_EQ(indices, (std::set<uint64_t>{0, 1, 2}));
    EXPECT_EQ(farm.Heard<protocol::RunFinished>(client).size(), 1u);
  }
  // The worker stays, and the farm is idle.
  EXPECT_TRUE(farm.service.IsWorker("w"));
  EXPECT_TRUE(farm.service.Snapshot().runs.empty());
}

TEST(FarmService, AClientThatLeavesStopsOnlyItsRun) {
  Farm farm;
  farm.Hello("w", 2);
  farm.Submit("a", 3);
  farm.Submit("b", 3);
  farm.Tick();
  for (const auto& job : farm.jobs["w"]) farm.Say("w", protocol::JobStarted{job.lease});
  farm.Say("a", protocol::Bye{"interrupted"});
  farm.Tick();
  // a's running test is cancelled on the worker; b's is not.
  std::vector<uint64_t> cancelled = farm.cancels["w"];
  ASSERT_EQ(cancelled.size(), 1u);
  for (const auto& job : farm.jobs["w"]) {
    if (job.lease != cancelled[0]) continue;
    EXPECT_EQ(job.name.substr(0, 2), "a-");
    farm.Say("w", fixtures::ResultOf(job, ExitState::Cancelled("cancelled")));
  }
  std::erase_if(farm.jobs["w"], [&](const auto& job) { return job.lease == cancelled[0]; });
  for (int round = 0; round < 10; ++round) {
    farm.Tick();
    farm.RunAll("w");
  }
  // a heard nothing after it left; b finished every test.
  EXPECT_TRUE(farm.Heard<protocol::RunFinished>("a").empty());
  EXPECT_EQ(farm.Heard<protocol::TestDone>("b").size(), 3u);
  EXPECT_EQ(farm.Heard<protocol::RunFinished>("b").size(), 1u);
  EXPECT_TRUE(farm.service.Snapshot().runs.empty()) << "both runs ended";
}

TEST(FarmService, ASilentClientIsLostAndItsRunStops) {
  Farm farm;
  farm.Hello("w", 1);
  farm.Submit("a", 2);
  farm.Tick();
  for (int i = 0; i < 5; ++i) {
    farm.clock.Advance(seconds(1));
    farm.Say("w", protocol::Heartbeat{});
    farm.Tick();
  }
  protocol::FarmStatus status = farm.service.Snapshot();
  ASSERT_EQ(status.runs.size(), 1u);
  EXPECT_EQ(status.runs[0].state, "stopping");
}

TEST(FarmService, TheStatusSaysWhichWorkersAreDraining) {
  Farm farm;
  farm.Hello("w1", 2);
  farm.Hello("w2", 2);
  farm.Tick();
  farm.Say("w1", protocol::Drain{"SIGTERM"});
  farm.Tick();
  protocol::FarmStatus status = farm.service.Snapshot();
  ASSERT_EQ(status.workers.size(), 2u);
  for (const protocol::WorkerStatus& worker : status.workers) {
    EXPECT_EQ(worker.draining, worker.name == "w1") << worker.name;
  }
}

// A client that does not acknowledge the profile pieces it is relayed holds back its run's
// pulls from the workers: the farm never has more than kProfileRelayWindow of them out.
TEST(FarmService, AProfileIsRelayedToItsClientWithinTheClientsCredit) {
  Farm farm;
  farm.Hello("w", 1);
  protocol::Submit submit;
  submit.client = "a";
  submit.test_count = 1;
  submit.has_prefetch = true;
  submit.coverage = true;
  farm.Say("a", submit);
  protocol::SubmitPart part;
  part.tests.push_back(ToWire(fixtures::Specs(1)[0], 0));
  part.last = true;
  farm.Say("a", part);
  farm.Tick();
  std::vector<protocol::JobAssign> jobs = farm.TakeJobs("w");
  ASSERT_EQ(jobs.size(), 1u);
  const uint64_t run = jobs[0].run;
  farm.Say("w", protocol::JobStarted{jobs[0].lease});
  protocol::JobResult result = fixtures::ResultOf(jobs[0]);
  result.profiles = 1;
  farm.Say("w", result);
  farm.Tick();
  constexpr uint64_t kPiece = protocol::kMaxChunkBytes;
  constexpr uint64_t kPieces = 12;
  std::size_t answered = 0;  // the worker answers every request it has had
  auto answer = [&] {
    std::vector<protocol::ProfileRequest> asked = farm.Heard<protocol::ProfileRequest>("w");
    for (; answered < asked.size(); ++answered) {
      protocol::ProfileChunk chunk;
      chunk.run = run;
      chunk.offset = asked[answered].offset;
      chunk.size = kPieces * kPiece;
      chunk.data = std::string(kPiece, 'p');
      chunk.last = chunk.offset + kPiece == chunk.size;
      chunk.merged = chunk.last ? 1 : 0;
      farm.Say("w", chunk);
    }
    farm.Tick();
  };
  auto relayed = [&] { return farm.Heard<protocol::ProfileData>("a").size(); };
  for (int round = 0; round < 10; ++round) answer();
  EXPECT_EQ(relayed(), protocol::kProfileRelayWindow) << "no acknowledgement, no more";
  // The client writes what it has and says so: the rest follows, within the credit again.
  std::size_t acked = 0;
  for (int round = 0; round < 20 && relayed() < kPieces; ++round) {
    const std::vector<protocol::ProfileData> pieces = farm.Heard<protocol::ProfileData>("a");
    for (; acked < pieces.size(); ++acked) {
      farm.Say("a", protocol::ProfileAck{pieces[acked].index, pieces[acked].offset});
    }
    answer();
    EXPECT_LE(relayed() - acked, protocol::kProfileRelayWindow);
  }
  EXPECT_EQ(relayed(), kPieces);
  std::vector<protocol::RunFinished> finished = farm.Heard<protocol::RunFinished>("a");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_TRUE(finished[0].errors.empty());
}

TEST(FarmService, RunsBeyondMaxRunsWaitAndBeyondTheQueueAreRefused) {
  Farm farm(/*max_runs=*/1, /*max_queued=*/1);
  farm.Hello("w", 1);
  farm.Submit("a", 1);
  farm.Submit("b", 1);
  farm.Submit("c", 1);
  farm.Tick();
  EXPECT_EQ(farm.Heard<protocol::Accepted>("a")[0].waiting_behind, 0u);
  auto b = farm.Heard<protocol::Accepted>("b");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].error.empty());
  auto c = farm.Heard<protocol::Accepted>("c");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_NE(c[0].error.find("the farm is full"), std::string::npos) << c[0].error;
  protocol::FarmStatus status = farm.service.Snapshot();
  ASSERT_EQ(status.runs.size(), 2u);
  EXPECT_EQ(status.runs[1].state, "waiting");
  // a ends: b starts at once.
  for (int round = 0; round < 6; ++round) {
    farm.RunAll("w");
    farm.Tick();
  }
  EXPECT_EQ(farm.Heard<protocol::TestDone>("a").size(), 1u);
  EXPECT_EQ(farm.Heard<protocol::TestDone>("b").size(), 1u);
}

TEST(FarmService, ASubmissionNamingAFileNeverUploadedIsRefused) {
  Farm farm;
  farm.Hello("w", 1);
  std::string sha(64, 'a');
  protocol::FileSet set{"/b", {{.path = "t", .sha256 = sha, .size = 1, .executable = true}}, {}};
  farm.Say("a", protocol::HasBlobs{{sha}});
  farm.Tick();
  auto missing = farm.Heard<protocol::MissingBlobs>("a");
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].sha256, (std::vector<std::string>{sha}));
  farm.Submit("a", 1, 0, {set});
  farm.Tick();
  auto accepted = farm.Heard<protocol::Accepted>("a");
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_NE(accepted[0].error.find("/b/t"), std::string::npos) << accepted[0].error;
  // Uploaded, the same submission runs, and its blob is in use until it ends.
  farm.Say("b", protocol::HasBlobs{{sha}});
  farm.Say("b", protocol::Upload{sha, 0, 1, "x"});
  farm.Submit("b", 1, 0, {set});
  farm.Tick();
  EXPECT_EQ(farm.service.BlobsInUse().count(sha), 1u);
  ASSERT_EQ(farm.jobs["w"].size(), 1u);
  EXPECT_NE(farm.jobs["w"][0].artifact_set, 0u);
  farm.RunAll("w");
  farm.Tick();
  farm.Say("b", protocol::Bye{"done"});  // kept until its client is gone
  farm.Tick();
  EXPECT_EQ(farm.service.BlobsInUse().count(sha), 0u);
}

// Uploads are verified off the farm's loop: a submission whose last upload is still being
// verified waits for it, then runs (or is refused if it failed).
TEST(FarmService, ASubmissionWaitsForItsUploadsToBeVerified) {
  Farm farm;
  farm.store.defer = true;
  farm.Hello("w", 1);
  std::string sha(64, 'b');
  protocol::FileSet set{"/b", {{.path = "t", .sha256 = sha, .size = 1, .executable = true}}, {}};
  for (const char* client : {"good", "bad"}) {
    farm.Say(client, protocol::HasBlobs{{sha}});
    farm.Say(client, protocol::Upload{sha, 0, 1, "x"});
    farm.Submit(client, 1, 0, {set});
  }
  farm.Tick();
  EXPECT_TRUE(farm.Heard<protocol::Accepted>("good").empty()) << "not before the upload is kept";
  EXPECT_TRUE(farm.jobs["w"].empty());
  // The second client's copy failed verification: it hears why, and its run is refused.
  farm.store.pending.pop_back();
  farm.service.OnUploadVerified("bad", sha, Error{"hash mismatch"});
  farm.Tick();
  auto errors = farm.Heard<protocol::ErrorReply>("bad");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].text.find("hash mismatch"), std::string::npos) << errors[0].text;
  auto refused = farm.Heard<protocol::Accepted>("bad");
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_NE(refused[0].error.find("was not uploaded"), std::string::npos) << refused[0].error;
  // The first client's copy is kept: its run is accepted and runs.
  farm.store.pending.clear();
  farm.store.blobs.insert(sha);
  farm.service.OnUploadVerified("good", sha, Ok{});
  farm.Tick();
  auto accepted = farm.Heard<protocol::Accepted>("good");
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].error, "");
  EXPECT_EQ(farm.jobs["w"].size(), 1u);
}

TEST(FarmService, ARefusedSubmissionLeavesTheBlobsOfRunningRunsInUse) {
  Farm farm;
  farm.Hello("w", 1);
  std::string a(64, 'a');
  std::string b(64, 'b');
  farm.Say("c1", protocol::HasBlobs{{a}});
  farm.Say("c1", protocol::Upload{a, 0, 1, "x"});
  protocol::FileSet with_a{"/r", {{.path = "t", .sha256 = a, .size = 1, .executable = true}}, {}};
  farm.Submit("c1", 1, 0, {with_a});
  farm.Tick();
  EXPECT_EQ(farm.service.BlobsInUse().count(a), 1u);
  // c2 names A (held) and B (never uploaded): refused, and A stays in use for c1.
  protocol::FileSet with_both = with_a;
  with_both.files.push_back({.path = "u", .sha256 = b, .size = 1, .executable = false});
  farm.Say("c2", protocol::HasBlobs{{a, b}});
  farm.Submit("c2", 1, 0, {with_both});
  farm.Tick();
  ASSERT_EQ(farm.Heard<protocol::Accepted>("c2").size(), 1u);
  EXPECT_FALSE(farm.Heard<protocol::Accepted>("c2")[0].error.empty());
  EXPECT_EQ(farm.service.BlobsInUse().count(a), 1u);
  EXPECT_EQ(farm.service.BlobsInUse().count(b), 0u);
  farm.RunAll("w");
  farm.Tick();
  EXPECT_EQ(farm.Heard<protocol::TestDone>("c1").size(), 1u);
  farm.Say("c1", protocol::Bye{"done"});
  farm.Tick();
  EXPECT_TRUE(farm.service.BlobsInUse().empty());
}

TEST(FarmService, AnUploadNotAskedAboutIsRefused) {
  Farm farm;
  farm.Say("c", protocol::HasBlobs{{}});
  farm.Say("c", protocol::Upload{std::string(64, 'e'), 0, 1, "x"});
  farm.Tick();
  EXPECT_EQ(farm.Heard<protocol::ErrorReply>("c").size(), 1u);
  EXPECT_TRUE(farm.store.blobs.empty());
}

TEST(FarmService, AnInterruptedWaitingRunIsToldItNeverRan) {
  Farm farm(/*max_runs=*/1);
  farm.Hello("w", 1);
  farm.Submit("a", 1);
  farm.Submit("b", 1);
  farm.Tick();
  farm.Say("b", protocol::StopRun{});
  farm.Tick();
  auto finished = farm.Heard<protocol::RunFinished>("b");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_TRUE(finished[0].interrupted);
  EXPECT_EQ(farm.service.Snapshot().runs.size(), 1u) << "only a's run is left";
}

TEST(FarmService, AnUnknownClientIsToldItsRunIsGone) {
  Farm farm;
  farm.Say("ghost", protocol::Heartbeat{});
  farm.Say("ghost2", protocol::StopRun{});
  farm.Tick();
  EXPECT_EQ(farm.Heard<protocol::Bye>("ghost").size(), 1u);
  EXPECT_EQ(farm.Heard<protocol::Bye>("ghost2").size(), 1u);
}

TEST(FarmService, StatusShowsWorkersTheirTestsAndRuns) {
  Farm farm;
  farm.Hello("w", 2);
  farm.Submit("a", 5, /*max_slots=*/1);
  farm.Tick();
  for (const auto& job : farm.jobs["w"]) farm.Say("w", protocol::JobStarted{job.lease});
  farm.Tick();
  protocol::FarmStatus status = farm.service.Snapshot();
  ASSERT_EQ(status.workers.size(), 1u);
  EXPECT_EQ(status.workers[0].name, "w");
  EXPECT_EQ(status.workers[0].slots, 2u);
  EXPECT_EQ(status.workers[0].busy, 1u);
  EXPECT_EQ(status.workers[0].tests, (std::vector<std::string>{"a-t0"}));
  ASSERT_EQ(status.runs.size(), 1u);
  EXPECT_EQ(status.runs[0].client, "a");
  EXPECT_EQ(status.runs[0].slots, 1u);
  EXPECT_EQ(status.runs[0].tests, 5u);
  EXPECT_EQ(status.runs[0].state, "running");
}

TEST(FarmService, TheViewCountsQueuedTestsAndTotalsThatOutliveTheRuns) {
  Farm farm(/*max_runs=*/1);
  farm.Hello("w", 1);
  farm.Submit("a", 3);
  farm.Submit("b", 4);  // waits its turn
  farm.Tick();
  FleetView view = farm.service.View(farm.clock.Now());
  ASSERT_EQ(view.runs.size(), 2u);
  EXPECT_EQ(view.runs[0].state, "running");
  EXPECT_EQ(view.runs[0].queued, 3u) << "held by the worker, not started: still waiting";
  EXPECT_EQ(view.runs[1].state, "waiting");
  EXPECT_EQ(view.runs[1].queued, 4u);
  // One starts a while after it was handed out.
  ASSERT_FALSE(farm.jobs["w"].empty());
  farm.clock.Advance(std::chrono::milliseconds(20));
  farm.Say("w", protocol::JobStarted{farm.jobs["w"][0].lease});
  farm.service.Shipped(1000);
  farm.Tick();
  view = farm.service.View(farm.clock.Now());
  EXPECT_EQ(view.runs[0].queued, 2u);
  EXPECT_EQ(view.dispatch_latency.count(), 1u);
  EXPECT_EQ(view.dispatch_latency.sum(), std::chrono::milliseconds(20));
  EXPECT_EQ(view.bytes_shipped, 1000u);
  // Both runs end: the totals stay.
  for (int round = 0; round < 20; ++round) {
    farm.Tick();
    farm.RunAll("w");
  }
  farm.Tick();
  view = farm.service.View(farm.clock.Now());
  EXPECT_TRUE(view.runs.empty());
  EXPECT_EQ(view.dispatch_latency.count(), 7u) << "every test of both runs started once";
  EXPECT_EQ(view.bytes_shipped, 1000u);
}

TEST(FarmService, ShutdownStopsEveryRunAndTellsWaitingClients) {
  Farm farm(/*max_runs=*/1);
  farm.Hello("w", 1);
  farm.Submit("a", 2);
  farm.Submit("b", 1);
  farm.Tick();
  farm.service.Shutdown("the farm is shutting down");
  farm.Tick();
  EXPECT_EQ(farm.Heard<protocol::Bye>("b").size(), 1u);
  // a's held test is cancelled (not yet started: the worker reports it cancelled).
  for (const auto& job : std::exchange(farm.jobs["w"], {})) {
    farm.Say("w", fixtures::ResultOf(job, ExitState::Cancelled("cancelled")));
  }
  farm.Tick();
  EXPECT_TRUE(farm.service.Done());
  auto finished = farm.Heard<protocol::RunFinished>("a");
  ASSERT_EQ(finished.size(), 1u);
  EXPECT_EQ(finished[0].stop_reason, "the farm is shutting down");
  EXPECT_EQ(farm.Heard<protocol::TestDone>("a").size(), 2u);
}

TEST(FarmWire, ATestSpecSurvivesTheTrip) {
  TestSpec spec = fixtures::Spec("suite");
  spec.gtest_case = "A.b";
  spec.timeout = seconds(3);
  spec.skip_return_code = 77;
  spec.EditSettings().ordering.depends = {"x"};
  spec.EditSettings().ordering.processors = 3;
  spec.EditSettings().output_rules.fail = {"boom"};
  spec.EditSettings().required_labels = {{"gpu", "1"}};
  TestSpec back = FromWire(ToWire(spec, 2));
  EXPECT_EQ(back.name, spec.name);
  EXPECT_EQ(back.gtest_case, "A.b");
  EXPECT_EQ(back.timeout, spec.timeout);
  EXPECT_EQ(back.skip_return_code, 77);
  EXPECT_EQ(back.settings().ordering.depends, spec.settings().ordering.depends);
  EXPECT_EQ(back.settings().ordering.processors, 3u);
  EXPECT_EQ(back.settings().output_rules.fail, spec.settings().output_rules.fail);
  EXPECT_EQ(back.settings().required_labels, spec.settings().required_labels);
  EXPECT_FALSE(FromWire(ToWire(fixtures::Spec("plain"), 0)).skip_return_code.has_value());
}

TEST(FarmWire, ConsecutiveTestsWithEqualSettingsShareOneCopy) {
  TestSpec a = fixtures::Spec("suite");
  a.EditSettings().env = {{"K", "v"}};
  TestSpec first = FromWire(ToWire(a, 0));
  TestSpec second = FromWire(ToWire(a, 0), &first);
  EXPECT_EQ(second.shared_settings.get(), first.shared_settings.get());
  TestSpec other = a;
  other.EditSettings().env = {{"K", "w"}};
  TestSpec third = FromWire(ToWire(other, 0), &second);
  EXPECT_NE(third.shared_settings.get(), second.shared_settings.get());
  EXPECT_EQ(third.settings().env.at("K"), "w");
  EXPECT_EQ(second.settings().env.at("K"), "v");
}

TEST(FarmWire, AReportSurvivesTheTrip) {
  TestReport report;
  report.test = 7;
  report.state = TestStatus::kExpired;
  report.reason = "no result";
  report.attempt = 2;
  report.batch = true;
  report.result = protocol::JobResult{};
  protocol::TestDone done = ToWire(report, 4);
  EXPECT_EQ(done.running, 4u);
  ASSERT_EQ(done.result.size(), 1u);
  auto back = FromWire(done);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->test, 7u);
  EXPECT_EQ(back->state, TestStatus::kExpired);
  EXPECT_EQ(back->attempt, 2u);
  EXPECT_TRUE(back->batch);
  done.state = "exploded";
  EXPECT_FALSE(FromWire(done));
}

}  // namespace
}  // namespace testfarm::coordinator
