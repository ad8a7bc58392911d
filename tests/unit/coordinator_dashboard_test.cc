// The dashboard's model and JSON API, with no socket: events in, answers out.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "coordinator/dashboard_api.h"
#include "coordinator/dashboard_model.h"

namespace testfarm::coordinator {
namespace {

using Json = nlohmann::json;

constexpr int64_t kT0 = 1764700000000;  // a Unix time in ms

FleetView Fleet(std::vector<WorkerView> workers, std::vector<RunView> runs, int64_t at = kT0) {
  FleetView view;
  view.at_ms = at;
  view.workers = std::move(workers);
  view.runs = std::move(runs);
  return view;
}

WorkerView Worker(const std::string& name, unsigned slots, std::vector<SlotView> running = {}) {
  WorkerView w;
  w.name = name;
  w.slots = slots;
  w.labels = {{"os", "linux"}};
  w.heard_at_ms = kT0;
  w.cache_bytes = 4096;
  w.running = std::move(running);
  return w;
}

RunView RunRow(const std::string& id, std::size_t tests, unsigned slots,
               const std::string& state = "running") {
  RunView r;
  r.id = id;
  r.state = state;
  r.tests = tests;
  r.slots = slots;
  r.label = "nightly";
  return r;
}

RunStartView Start(const std::string& id, std::size_t n, std::vector<Millis> expected = {}) {
  RunStartView s;
  s.id = id;
  s.label = "nightly";
  s.started_ms = kT0;
  for (std::size_t i = 0; i < n; ++i) s.names.push_back("suite::T." + std::to_string(i));
  s.expected = std::move(expected);
  return s;
}

FinishedTest Done(std::size_t index, TestStatus state, const std::string& result,
                  const std::string& worker = "w1", int64_t start = 0, int64_t end = 10) {
  FinishedTest t;
  t.index = index;
  t.name = "suite::T." + std::to_string(index);
  t.state = state;
  t.result = result;
  t.worker = worker;
  t.ran = true;
  t.started_ms = start;
  t.finished_ms = end;
  t.duration_ms = end - start;
  t.out = "out of " + t.name;
  t.err = "err of " + t.name;
  return t;
}

HttpRequest Get(const std::string& path,
                std::vector<std::pair<std::string, std::string>> params = {}) {
  HttpRequest r;
  r.path = path;
  r.params = std::move(params);
  return r;
}

Json Body(const HttpReply& reply) {
  return Json::parse(reply.body);
}

TEST(DashboardModel, CountsFollowFinishedTestsAndTheEndAgreesWithTheSummary) {
  DashboardModel model;
  model.Apply(Start("run-1", 4));
  model.Apply(Fleet({Worker("w1", 2)}, {RunRow("run-1", 4, 2)}));
  model.Apply(TestDoneEvent{"run-1", Done(0, TestStatus::kPassed, "PASS")});
  model.Apply(TestDoneEvent{"run-1", Done(1, TestStatus::kFailed, "CRASH")});
  FinishedTest retried = Done(2, TestStatus::kFailed, "RETRY");
  retried.retried = true;
  model.Apply(TestDoneEvent{"run-1", retried});
  model.Apply(TestDoneEvent{"run-1", Done(2, TestStatus::kFlaky, "FLAKY")});

  Json run = model.Runs(kT0)["runs"][0];
  EXPECT_EQ(run["id"], "run-1");
  EXPECT_EQ(run["state"], "running");
  EXPECT_EQ(run["finished"], 3);  // the retried attempt is not a test's last word
  EXPECT_EQ(run["counts"]["passed"], 1);
  EXPECT_EQ(run["counts"]["failed"], 1);
  EXPECT_EQ(run["counts"]["flaky"], 1);
  EXPECT_EQ(run["queued"], 1);

  RunSummary summary;
  for (auto [i, state] : {std::pair{0, TestStatus::kPassed},
                          {1, TestStatus::kFailed},
                          {2, TestStatus::kFlaky},
                          {3, TestStatus::kNotRun}}) {
    TestReport report;
    report.test = static_cast<std::size_t>(i);
    report.state = state;
    summary.reports.push_back(report);
  }
  model.Apply(RunEndEvent{"run-1", CountsOf(summary), "1 passed, 1 failed, 1 flaky, 1 not run", "",
                          kT0 + 1000});
  run = model.Runs(kT0)["runs"][0];
  EXPECT_EQ(run["state"], "done");
  EXPECT_EQ(run["counts"]["not_run"], 1);
  EXPECT_EQ(run["finished"], 4);
  EXPECT_EQ(run["summary"], "1 passed, 1 failed, 1 flaky, 1 not run");
  EXPECT_EQ(run["ended_ms"], kT0 + 1000);
}

TEST(DashboardModel, SlotsShowWhatRunsAndTestsAreMarkedRunning) {
  DashboardModel model;
  model.Apply(Start("run-1", 3));
  model.Apply(
      Fleet({Worker("w1", 4, {{"run-1", "suite::T.1", kT0 - 500}})}, {RunRow("run-1", 3, 4)}));
  Json workers = model.Workers(0, 500, kT0 + 100);
  ASSERT_EQ(workers["total"], 1);
  Json w = workers["workers"][0];
  EXPECT_EQ(w["name"], "w1");
  EXPECT_EQ(w["slots"], 4);
  EXPECT_EQ(w["busy"], 1);
  EXPECT_EQ(w["heard_ms_ago"], 100);
  EXPECT_EQ(w["cache_bytes"], 4096);
  EXPECT_EQ(w["draining"], false);
  EXPECT_EQ(w["labels"]["os"], "linux");
  EXPECT_EQ(w["running"][0]["test"], "suite::T.1");
  EXPECT_EQ(w["running"][0]["since_ms"], kT0 - 500);

  Json running = *model.Tests("run-1", {{"running"}, "", 0, 100});
  ASSERT_EQ(running["total"], 1);
  EXPECT_EQ(running["tests"][0]["index"], 1);
  EXPECT_EQ(running["tests"][0]["result"], "RUN");
  EXPECT_EQ(model.Runs(kT0)["runs"][0]["running"], 1);

  // Told to stop, it drains: the row says so.
  WorkerView draining = Worker("w1", 4, {{"run-1", "suite::T.1", kT0 - 500}});
  draining.draining = true;
  model.Apply(Fleet({draining}, {RunRow("run-1", 3, 4)}));
  EXPECT_EQ(model.Workers(0, 500, kT0 + 100)["workers"][0]["draining"], true);

  // The test finished and the slot emptied: it is no longer running.
  model.Apply(TestDoneEvent{"run-1", Done(1, TestStatus::kPassed, "PASS")});
  model.Apply(Fleet({Worker("w1", 4)}, {RunRow("run-1", 3, 4)}));
  EXPECT_EQ((*model.Tests("run-1", {{"running"}, "", 0, 100}))["total"], 0);
  EXPECT_EQ((*model.Tests("run-1", {{"queued"}, "", 0, 100}))["total"], 2);
}

TEST(DashboardModel, TestsComeFailuresFirstFilteredAndPaged) {
  DashboardModel model;
  model.Apply(Start("run-1", 10));
  for (std::size_t i = 0; i < 10; ++i) {
    bool fail = i == 3 || i == 7;
    model.Apply(TestDoneEvent{"run-1", Done(i, fail ? TestStatus::kFailed : TestStatus::kPassed,
                                            fail ? "FAIL" : "PASS")});
  }
  Json all = *model.Tests("run-1", {{}, "", 0, 4});
  EXPECT_EQ(all["total"], 10);
  ASSERT_EQ(all["tests"].size(), 4u);
  EXPECT_EQ(all["tests"][0]["index"], 3);
  EXPECT_EQ(all["tests"][1]["index"], 7);
  EXPECT_EQ(all["tests"][2]["index"], 0);
  Json page = *model.Tests("run-1", {{}, "", 8, 4});
  ASSERT_EQ(page["tests"].size(), 2u);
  EXPECT_EQ(page["tests"][1]["index"], 9);
  Json named = *model.Tests("run-1", {{"passed"}, "T.9", 0, 100});
  ASSERT_EQ(named["total"], 1);
  EXPECT_EQ(named["tests"][0]["name"], "suite::T.9");
  EXPECT_FALSE(model.Tests("run-9", {}).has_value());
}

TEST(DashboardModel, OutputKeepsEveryAttemptWithinItsBudgetPassingOutputGoingFirst) {
  DashboardLimits limits;
  limits.output_tail = 8;
  limits.output_budget = 100;
  DashboardModel model(limits);
  model.Apply(Start("run-1", 20));
  FinishedTest failed = Compact(
      [] {
        TestReport r;
        r.test = 0;
        r.name = "suite::T.0";
        r.state = TestStatus::kFailed;
        r.worker = "w1";
        protocol::JobResult result;
        result.stdout_text = "0123456789abcdef";  // longer than the tail kept
        r.result = result;
        return r;
      }(),
      limits.output_tail);
  EXPECT_EQ(failed.out, "89abcdef");
  model.Apply(TestDoneEvent{"run-1", failed});
  for (std::size_t i = 1; i < 20; ++i) {
    model.Apply(TestDoneEvent{"run-1", Done(i, TestStatus::kPassed, "PASS")});
  }
  EXPECT_LE(model.output_bytes(), limits.output_budget);
  Json kept = *model.Output("run-1", 0);
  EXPECT_EQ(kept["attempts"][0]["stdout"], "89abcdef");
  EXPECT_EQ(kept["attempts"][0]["kept"], true);
  Json dropped = *model.Output("run-1", 1);
  EXPECT_EQ(dropped["attempts"][0]["kept"], false);
  EXPECT_EQ(dropped["attempts"][0]["stdout"], "");
  Json last = *model.Output("run-1", 19);
  EXPECT_EQ(last["attempts"][0]["kept"], true);
  EXPECT_FALSE(model.Output("run-1", 20).has_value());
}

TEST(DashboardModel, TimelineLanesNeverOverlapOnAWorker) {
  DashboardModel model;
  model.Apply(Start("run-1", 4));
  model.Apply(TestDoneEvent{"run-1", Done(0, TestStatus::kPassed, "PASS", "w1", 0, 100)});
  model.Apply(TestDoneEvent{"run-1", Done(1, TestStatus::kPassed, "PASS", "w1", 50, 150)});
  model.Apply(TestDoneEvent{"run-1", Done(2, TestStatus::kFailed, "FAIL", "w1", 120, 200)});
  model.Apply(TestDoneEvent{"run-1", Done(3, TestStatus::kPassed, "PASS", "w2", 0, 10)});
  Json spans = (*model.Timeline("run-1", 0, kT0 + 1000))["spans"];
  ASSERT_EQ(spans.size(), 4u);
  EXPECT_EQ(spans[0]["lane"], 0);
  EXPECT_EQ(spans[1]["lane"], 1);
  EXPECT_EQ(spans[2]["lane"], 0);  // free again by 120
  EXPECT_EQ(spans[2]["status"], "failed");
  EXPECT_EQ(spans[2]["start_ms"], kT0 + 120);
  EXPECT_EQ(spans[3]["lane"], 0);
  EXPECT_EQ((*model.Timeline("run-1", kT0 + 160, kT0))["spans"].size(), 1u);
}

TEST(DashboardModel, AStreamGetsOnlyWhatChangedSinceItsLastEvent) {
  DashboardModel model;
  FarmInfo info{"serve", "1.0", kT0, false, 1, 0};
  model.Apply(Start("run-1", 3));
  model.Apply(Fleet({Worker("w1", 2), Worker("w2", 2)}, {RunRow("run-1", 3, 4)}));
  StreamCursor cursor;
  Json snapshot = model.Snapshot(info, kT0, &cursor);
  EXPECT_EQ(snapshot["workers"].size(), 2u);
  EXPECT_EQ(snapshot["runs"].size(), 1u);
  EXPECT_TRUE(model.Update(info, kT0, &cursor).is_null());  // nothing changed

  // w2 starts a test; w1 stays as it was; w3 joins... and then w1 leaves.
  model.Apply(Fleet({Worker("w1", 2), Worker("w2", 2, {{"run-1", "suite::T.0", kT0}})},
                    {RunRow("run-1", 3, 4)}));
  model.Apply(TestDoneEvent{"run-1", Done(2, TestStatus::kFailed, "CRASH", "w2")});
  model.Apply(Fleet({Worker("w2", 2, {{"run-1", "suite::T.0", kT0}})}, {RunRow("run-1", 3, 4)}));
  Json update = model.Update(info, kT0, &cursor);
  ASSERT_FALSE(update.is_null());
  ASSERT_EQ(update["workers"].size(), 1u);
  EXPECT_EQ(update["workers"][0]["name"], "w2");
  EXPECT_EQ(update["removed_workers"], Json::array({"w1"}));
  ASSERT_EQ(update["failures"].size(), 1u);
  EXPECT_EQ(update["failures"][0]["index"], 2);
  EXPECT_EQ(update["failures"][0]["result"], "CRASH");
  EXPECT_EQ(update["spans"].size(), 1u);
  EXPECT_EQ(update["runs"][0]["counts"]["failed"], 1);
  EXPECT_TRUE(model.Update(info, kT0, &cursor).is_null());
}

TEST(DashboardModel, EtaComesFromTheHistoryAndTheSlotsHeld) {
  DashboardModel model;
  model.Apply(Start("run-1", 4, {Millis(1000), Millis(1000), Millis(2000), Millis(4000)}));
  model.Apply(Fleet({Worker("w1", 2)}, {RunRow("run-1", 4, 2)}));
  EXPECT_EQ(model.Runs(kT0)["runs"][0]["eta_ms"], 4000);  // 8 s of tests over 2 slots
  model.Apply(TestDoneEvent{"run-1", Done(3, TestStatus::kPassed, "PASS")});
  EXPECT_EQ(model.Runs(kT0)["runs"][0]["eta_ms"], 2000);
  DashboardModel without;
  without.Apply(Start("run-1", 4));
  without.Apply(Fleet({Worker("w1", 2)}, {RunRow("run-1", 4, 2)}));
  EXPECT_TRUE(without.Runs(kT0)["runs"][0]["eta_ms"].is_null());
}

TEST(DashboardModel, AWaitingRunThatLeavesIsGoneAndOnlyTheNewestEndedRunsAreKept) {
  DashboardLimits limits;
  limits.ended_runs = 2;
  DashboardModel model(limits);
  model.Apply(Fleet({}, {RunRow("run-9", 5, 0, "waiting")}));
  EXPECT_EQ(model.Runs(kT0)["runs"][0]["state"], "waiting");
  model.Apply(Fleet({}, {}));
  EXPECT_EQ(model.Runs(kT0)["runs"].size(), 0u);
  for (int i = 1; i <= 4; ++i) {
    std::string id = "run-" + std::to_string(i);
    model.Apply(Start(id, 1));
    model.Apply(TestDoneEvent{id, Done(0, TestStatus::kPassed, "PASS")});
    RunEndEvent end;
    end.run = id;
    end.summary = "1 passed";
    end.ended_ms = kT0 + i;
    model.Apply(std::move(end));
  }
  Json runs = model.Runs(kT0)["runs"];
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]["id"], "run-4");  // newest first
  EXPECT_EQ(runs[1]["id"], "run-3");
}

TEST(DashboardModel, EndedRunsGoInTheOrderTheyEndedAndStreamsHearOfIt) {
  DashboardLimits limits;
  limits.ended_runs = 2;
  DashboardModel model(limits);
  FarmInfo info;
  model.Apply(Start("nightly", 3));  // first seen, last to end
  for (int i = 1; i <= 3; ++i) model.Apply(Start("run-" + std::to_string(i), 1));
  StreamCursor cursor;
  model.Snapshot(info, kT0, &cursor);
  auto end = [&](const std::string& id) {
    RunEndEvent e;
    e.run = id;
    e.ended_ms = kT0;
    model.Apply(std::move(e));
  };
  end("run-1");
  end("run-2");
  end("run-3");    // run-1 goes
  end("nightly");  // run-2 goes, not the nightly run that started first
  Json runs = model.Runs(kT0)["runs"];
  ASSERT_EQ(runs.size(), 2u);
  EXPECT_EQ(runs[0]["id"], "run-3");
  EXPECT_EQ(runs[1]["id"], "nightly");
  Json update = model.Update(info, kT0, &cursor);
  EXPECT_EQ(update["removed_runs"], Json::array({"run-1", "run-2"}));
}

TEST(DashboardModel, RepeatsNameTheirCopiesAndTheRunBeginsWhenItsClockStarts) {
  DashboardModel model;
  model.Apply(Start("run-1", 2));
  model.Apply(RunBeganEvent{"run-1", kT0 + 5000});
  model.Apply(TestDoneEvent{"run-1", Done(3, TestStatus::kPassed, "PASS", "w1", 0, 10)});
  Json tests = *model.Tests("run-1", {{}, "", 0, 10});
  ASSERT_EQ(tests["total"], 4);
  EXPECT_EQ(tests["tests"][2]["name"], "suite::T.0");  // index 2: the copy of test 0
  EXPECT_EQ(tests["tests"][3]["name"], "suite::T.1");
  EXPECT_EQ((*model.Timeline("run-1", 0, kT0))["spans"][0]["start_ms"], kT0 + 5000);
}

TEST(DashboardApi, AnswersEachEndpointAndSaysWhatIsWrongWithABadOne) {
  DashboardModel model;
  FarmInfo info{"run", "1.0", kT0, false, 0, 0};
  model.Apply(Start("run-1", 3));
  model.Apply(TestDoneEvent{"run-1", Done(1, TestStatus::kFailed, "FAIL")});
  auto answer = [&](HttpRequest request) { return AnswerFromModel(model, info, kT0, request); };

  EXPECT_EQ(Body(answer(Get("/api/v1/farm")))["mode"], "run");
  EXPECT_EQ(Body(answer(Get("/api/v1/runs")))["runs"][0]["id"], "run-1");
  HttpReply tests = answer(Get("/api/v1/runs/run-1/tests", {{"status", "failed,queued"}}));
  EXPECT_EQ(tests.status, 200);
  EXPECT_EQ(Body(tests)["total"], 3);
  EXPECT_EQ(Body(tests)["tests"][0]["name"], "suite::T.1");
  HttpReply output = answer(Get("/api/v1/runs/run-1/tests/1/output"));
  EXPECT_EQ(output.status, 200);
  EXPECT_EQ(Body(output)["attempts"][0]["stdout"], "out of suite::T.1");
  EXPECT_EQ(answer(Get("/api/v1/runs/run-1/timeline", {{"since_ms", "0"}})).status, 200);
  EXPECT_EQ(answer(Get("/api/v1/workers", {{"limit", "10"}})).status, 200);

  auto error_of = [](const HttpReply& reply) { return Body(reply)["error"].get<std::string>(); };
  HttpReply bad_limit = answer(Get("/api/v1/runs/run-1/tests", {{"limit", "abc"}}));
  EXPECT_EQ(bad_limit.status, 400);
  EXPECT_EQ(error_of(bad_limit), "bad value for limit: 'abc' (a whole number from 1 to 1000)");
  EXPECT_EQ(answer(Get("/api/v1/runs/run-1/tests", {{"limit", "5000"}})).status, 400);
  HttpReply bad_status = answer(Get("/api/v1/runs/run-1/tests", {{"status", "bogus"}}));
  EXPECT_EQ(bad_status.status, 400);
  EXPECT_NE(error_of(bad_status).find("bad status 'bogus'"), std::string::npos);
  HttpReply unknown = answer(Get("/api/v1/runs", {{"x", "1"}}));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(error_of(unknown), "unknown parameter 'x' (this endpoint takes none)");
  EXPECT_EQ(answer(Get("/api/v1/workers", {{"limit", "1"}, {"limit", "2"}})).status, 400);
  EXPECT_EQ(answer(Get("/api/v1/runs/run-1/tests/x/output")).status, 400);
  EXPECT_EQ(answer(Get("/api/v1/runs/run-1/tests/99/output")).status, 404);
  HttpReply no_run = answer(Get("/api/v1/runs/run-7/tests"));
  EXPECT_EQ(no_run.status, 404);
  EXPECT_EQ(error_of(no_run), "no run 'run-7'");
  EXPECT_EQ(answer(Get("/api/v1/nothing")).status, 404);
}

TEST(DashboardApi, TheTokenGuardsTheApiButNotThePage) {
  HttpRequest api = Get("/api/v1/runs");
  EXPECT_FALSE(Unauthorized("", api));
  auto missing = Unauthorized("s3cret", api);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 401);
  api.authorization = "Bearer wrong!";
  EXPECT_EQ(Unauthorized("s3cret", api)->status, 401);
  api.authorization = "Bearer s3cret";
  EXPECT_FALSE(Unauthorized("s3cret", api));
  EXPECT_FALSE(Unauthorized("s3cret", Get("/")));
  EXPECT_FALSE(Unauthorized("s3cret", Get("/app.js")));
}

TEST(DashboardApi, ThePageIsBuiltInAndRoutesAreKnown) {
  HttpReply page = PageFile("/");
  EXPECT_EQ(page.status, 200);
  EXPECT_EQ(page.content_type, "text/html; charset=utf-8");
  EXPECT_NE(page.body.find("/app.js"), std::string::npos);
  EXPECT_EQ(PageFile("/app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(PageFile("/style.css").status, 200);
  EXPECT_EQ(PageFile("/etc/passwd").status, 404);
  EXPECT_EQ(EndpointOf("/"), Endpoint::kPage);
  EXPECT_EQ(EndpointOf("/api/v1/events"), Endpoint::kEvents);
  EXPECT_EQ(EndpointOf("/api/v1/history/flaky"), Endpoint::kHistory);
  EXPECT_EQ(EndpointOf("/api/v1/runs"), Endpoint::kModel);
  EXPECT_EQ(EndpointOf("/favicon.ico"), Endpoint::kNotFound);
}

TEST(DashboardApi, HistoryEndpointsCheckTheirParameters) {
  class FakeHistory : public DashboardHistory {
   public:
    Result<std::string> Flaky(int64_t since_ms, std::size_t limit) override {
      return Json{{"since_ms", since_ms}, {"limit", limit}}.dump();
    }
    Result<std::string> Trend(const std::string& test, int64_t) override {
      return Json{{"test", test}}.dump();
    }
  } history;
  HttpReply flaky = AnswerFromHistory(&history, kT0, Get("/api/v1/history/flaky", {{"days", "2"}}));
  EXPECT_EQ(flaky.status, 200);
  EXPECT_EQ(Body(flaky)["since_ms"], kT0 - 2 * 24 * 3600 * 1000);
  EXPECT_EQ(Body(flaky)["limit"], 50);
  EXPECT_EQ(Body(AnswerFromHistory(&history, kT0,
                                   Get("/api/v1/history/trend", {{"test", "a::B.c"}})))["test"],
            "a::B.c");
  EXPECT_EQ(AnswerFromHistory(&history, kT0, Get("/api/v1/history/trend")).status, 400);
  EXPECT_EQ(AnswerFromHistory(&history, kT0, Get("/api/v1/history/flaky", {{"days", "-1"}})).status,
            400);
  EXPECT_EQ(AnswerFromHistory(nullptr, kT0, Get("/api/v1/history/flaky")).status, 404);
  EXPECT_EQ(AnswerFromHistory(&history, kT0, Get("/api/v1/history/other")).status, 404);
}

TEST(DashboardModel, AHundredThousandTestsAnswerAPageOfAHundred) {
  DashboardModel model;
  constexpr std::size_t kTests = 100000;
  model.Apply(Start("run-1", kTests));
  std::vector<WorkerView> workers;
  for (int w = 0; w < 128; ++w) workers.push_back(Worker("w" + std::to_string(w), 16));
  model.Apply(Fleet(workers, {RunRow("run-1", kTests, 2048)}));
  for (std::size_t i = 0; i < kTests; ++i) {
    FinishedTest t =
        Done(i, i % 1000 == 0 ? TestStatus::kFailed : TestStatus::kPassed, "PASS",
             "w" + std::to_string(i % 128), static_cast<int64_t>(i), static_cast<int64_t>(i) + 1);
    model.Apply(TestDoneEvent{"run-1", std::move(t)});
  }
  Json page = *model.Tests("run-1", {{}, "", 0, 100});
  EXPECT_EQ(page["total"], kTests);
  EXPECT_EQ(page["tests"].size(), 100u);
  EXPECT_EQ(page["tests"][99]["status"], "failed");  // 100 failures come first
  EXPECT_LE(model.output_bytes(), DashboardLimits{}.output_budget);
  // A live stream's update is bounded however much happened.
  FarmInfo info;
  StreamCursor cursor;
  model.Snapshot(info, kT0, &cursor);
  model.Apply(TestDoneEvent{"run-1", Done(5, TestStatus::kFailed, "FAIL")});
  EXPECT_LT(JsonText(model.Update(info, kT0, &cursor)).size(), 10000u);
}

}  // namespace
}  // namespace testfarm::coordinator
