// The farm's metrics without a socket: the latency histogram, the exposition text for a given
// snapshot, what a fleet view and finished tests make of it, and the sink that feeds both the
// dashboard and the metrics.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/dashboard_feed.h"
#include "coordinator/latency_histogram.h"
#include "coordinator/metrics.h"

namespace testfarm::coordinator {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(MetricsHistogram, CountsEachLatencyInTheFirstBucketItFitsAndCumulatesUpwards) {
  LatencyHistogram h;
  h.Observe(microseconds(500));   // <= 0.001
  h.Observe(milliseconds(1));     // on the bound: still <= 0.001
  h.Observe(microseconds(1001));  // <= 0.0025
  h.Observe(milliseconds(300));   // <= 0.5
  h.Observe(seconds(11));         // beyond every bound
  h.Observe(nanoseconds(-5));     // a clock that went back: 0
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(h.sum(), microseconds(500) + milliseconds(1) + microseconds(1001) + milliseconds(300) +
                         seconds(11));
  const std::vector<uint64_t> expected = {3, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6};
  ASSERT_EQ(LatencyHistogram::kBounds + 1, expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(h.CumulativeCount(i), expected[i]) << "bucket " << i;
    if (i > 0) {
      EXPECT_GE(h.CumulativeCount(i), h.CumulativeCount(i - 1));
    }
  }
}

TEST(MetricsHistogram, AddingHistogramsAddsTheirBucketsCountsAndSums) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.Observe(milliseconds(3));
  b.Observe(milliseconds(3));
  b.Observe(seconds(2));
  LatencyHistogram total;
  total.Add(a);
  total.Add(b);
  EXPECT_EQ(total.count(), 3u);
  EXPECT_EQ(total.sum(), milliseconds(2006));
  EXPECT_EQ(total.CumulativeCount(2), 2u);   // <= 0.005
  EXPECT_EQ(total.CumulativeCount(9), 2u);   // <= 1
  EXPECT_EQ(total.CumulativeCount(10), 3u);  // <= 2.5
}

TEST(MetricsText, IsExactlyThisForAGivenSnapshot) {
  FarmMetrics m;
  m.version = "1.2.3";
  m.workers = 2;
  m.draining = 1;
  m.slots = 8;
  m.slots_busy = 3;
  m.runs_running = 1;
  m.runs_queued = 2;
  m.tests_queued = 40;
  m.finished = {5, 1, 0, 2, 0, 0, 3};  // passed failed flaky skipped cancelled lost not_run
  m.dispatch_latency.Observe(microseconds(1500));
  m.dispatch_latency.Observe(milliseconds(20));
  m.dispatch_latency.Observe(seconds(30));
  m.bytes_shipped = 123456;
  const std::string expected =
      "# HELP testfarm_info The farm's testfarm version (always 1).\n"
      "# TYPE testfarm_info gauge\n"
      "testfarm_info{version=\"1.2.3\"} 1\n"
      "# HELP testfarm_workers Workers connected to the farm.\n"
      "# TYPE testfarm_workers gauge\n"
      "testfarm_workers 2\n"
      "# HELP testfarm_workers_draining Workers draining (told to stop): they finish their "
      "running tests and take no new ones.\n"
      "# TYPE testfarm_workers_draining gauge\n"
      "testfarm_workers_draining 1\n"
      "# HELP testfarm_slots Slots of the connected workers that take tests (not draining).\n"
      "# TYPE testfarm_slots gauge\n"
      "testfarm_slots 8\n"
      "# HELP testfarm_slots_busy Slots running a test now.\n"
      "# TYPE testfarm_slots_busy gauge\n"
      "testfarm_slots_busy 3\n"
      "# HELP testfarm_runs Runs holding slots (running: running, stopping or finishing) and "
      "waiting their turn (queued).\n"
      "# TYPE testfarm_runs gauge\n"
      "testfarm_runs{state=\"running\"} 1\n"
      "testfarm_runs{state=\"queued\"} 2\n"
      "# HELP testfarm_tests_queued Tests of the farm's runs not yet started, waiting for a slot "
      "(every test of a queued run).\n"
      "# TYPE testfarm_tests_queued gauge\n"
      "testfarm_tests_queued 40\n"
      "# HELP testfarm_tests_finished_total Tests finished, by status (a failure, crash or "
      "timeout is failed; an expired one lost; a retried attempt is not counted).\n"
      "# TYPE testfarm_tests_finished_total counter\n"
      "testfarm_tests_finished_total{status=\"passed\"} 5\n"
      "testfarm_tests_finished_total{status=\"failed\"} 1\n"
      "testfarm_tests_finished_total{status=\"flaky\"} 0\n"
      "testfarm_tests_finished_total{status=\"skipped\"} 2\n"
      "testfarm_tests_finished_total{status=\"cancelled\"} 0\n"
      "testfarm_tests_finished_total{status=\"lost\"} 0\n"
      "testfarm_tests_finished_total{status=\"not_run\"} 3\n"
      "# HELP testfarm_dispatch_latency_seconds From a job's assignment to a worker to the "
      "worker's word that it started (transport, fetching its files and, for a job held ahead "
      "of a free slot, that wait included).\n"
      "# TYPE testfarm_dispatch_latency_seconds histogram\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.001\"} 0\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.0025\"} 1\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.005\"} 1\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.01\"} 1\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.025\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.05\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.1\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.25\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"0.5\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"1\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"2.5\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"5\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"10\"} 2\n"
      "testfarm_dispatch_latency_seconds_bucket{le=\"+Inf\"} 3\n"
      "testfarm_dispatch_latency_seconds_sum 30.0215\n"
      "testfarm_dispatch_latency_seconds_count 3\n"
      "# HELP testfarm_bytes_shipped_total Bytes of test files the farm sent to workers.\n"
      "# TYPE testfarm_bytes_shipped_total counter\n"
      "testfarm_bytes_shipped_total 123456\n";
  EXPECT_EQ(MetricsText(m), expected);
}

TEST(MetricsText, AFreshFarmHasEverySeriesAtZero) {
  const std::string text = MetricsText(FarmMetrics{});
  for (const char* status :
       {"passed", "failed", "flaky", "skipped", "cancelled", "lost", "not_run"}) {
    EXPECT_NE(
        text.find("testfarm_tests_finished_total{status=\"" + std::string(status) + "\"} 0\n"),
        std::string::npos)
        << status;
  }
  EXPECT_NE(text.find("testfarm_dispatch_latency_seconds_bucket{le=\"+Inf\"} 0\n"),
            std::string::npos);
  EXPECT_NE(text.find("testfarm_dispatch_latency_seconds_sum 0\n"), std::string::npos);
  EXPECT_NE(text.find("testfarm_bytes_shipped_total 0\n"), std::string::npos);
  // Every line is a HELP, a TYPE or a sample `name{labels} value`.
  static const std::regex line(R"(# HELP [a-z_]+ .+|# TYPE [a-z_]+ (gauge|counter|histogram)|)"
                               R"([a-z_]+(\{[a-z]+="[^"]*"\})? [0-9.e+-]+)");
  std::istringstream lines(text);
  for (std::string l; std::getline(lines, l);) EXPECT_TRUE(std::regex_match(l, line)) << l;
}

TEST(MetricsText, LabelValuesEscapeBackslashQuoteAndNewline) {
  EXPECT_EQ(EscapeLabelValue("plain 1.0"), "plain 1.0");
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  FarmMetrics m;
  m.version = "x\"y\n";
  EXPECT_NE(MetricsText(m).find("testfarm_info{version=\"x\\\"y\\n\"} 1\n"), std::string::npos);
}

WorkerView Worker(const std::string& name, unsigned slots, std::size_t busy) {
  WorkerView worker;
  worker.name = name;
  worker.slots = slots;
  for (std::size_t i = 0; i < busy; ++i) worker.running.push_back(SlotView{"run-1", "t", 0});
  return worker;
}

RunView RunOf(const std::string& id, const std::string& state, std::size_t queued) {
  RunView run;
  run.id = id;
  run.state = state;
  run.queued = queued;
  return run;
}

TEST(MetricsText, AFleetViewSetsTheGaugesAndTotalsNeverGoDown) {
  FarmMetrics m;
  FleetView view;
  view.workers = {Worker("a", 4, 2), Worker("b", 2, 1)};
  view.runs = {RunOf("run-1", "running", 3), RunOf("run-2", "stopping", 0),
               RunOf("run-3", "waiting", 10)};
  view.dispatch_latency.Observe(milliseconds(2));
  view.bytes_shipped = 100;
  TakeFleet(m, view);
  EXPECT_EQ(m.workers, 2u);
  EXPECT_EQ(m.slots, 6u);
  EXPECT_EQ(m.slots_busy, 3u);
  EXPECT_EQ(m.runs_running, 2u);
  EXPECT_EQ(m.runs_queued, 1u);
  EXPECT_EQ(m.tests_queued, 13u);
  EXPECT_EQ(m.dispatch_latency.count(), 1u);
  EXPECT_EQ(m.bytes_shipped, 100u);
  EXPECT_EQ(m.draining, 0u);
  // A draining worker's slots are not offered any more; what it runs is still busy.
  view.workers[0].draining = true;
  TakeFleet(m, view);
  EXPECT_EQ(m.draining, 1u);
  EXPECT_EQ(m.slots, 2u);
  EXPECT_EQ(m.slots_busy, 3u);
  // The fleet empties: the gauges follow, the totals stay.
  TakeFleet(m, FleetView{});
  EXPECT_EQ(m.workers, 0u);
  EXPECT_EQ(m.slots_busy, 0u);
  EXPECT_EQ(m.runs_running + m.runs_queued + m.tests_queued, 0u);
  EXPECT_EQ(m.dispatch_latency.count(), 1u);
  EXPECT_EQ(m.bytes_shipped, 100u);
}

TEST(MetricsText, FinishedTestsCountByStatusButARetriedAttemptDoesNot) {
  FarmMetrics m;
  TestReport report;
  report.state = TestStatus::kPassed;
  CountFinished(m, report);
  CountFinished(m, report);
  report.state = TestStatus::kFailed;
  report.retried = true;  // it runs again: not a test finished
  CountFinished(m, report);
  report.state = TestStatus::kFlaky;
  report.retried = false;
  CountFinished(m, report);
  report.state = TestStatus::kExpired;
  CountFinished(m, report);
  const std::string text = MetricsText(m);
  EXPECT_NE(text.find("{status=\"passed\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("{status=\"failed\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("{status=\"flaky\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("{status=\"lost\"} 1\n"), std::string::npos);
}

// A sink that takes a fleet view every other time it is asked, and records what it got.
class CountingSink : public DashboardSink {
 public:
  bool FleetDue(SteadyTime) override { return (asked++ % every) == 0; }
  std::optional<SteadyTime> NextFleetAt() const override { return next; }
  void Fleet(FleetView) override { ++fleets; }
  void RunStarted(RunStartView) override { ++started; }
  void RunBegan(const std::string&) override {}
  void TestFinished(const std::string&, const TestReport&) override { ++finished; }
  void RunEnded(const std::string&, const RunSummary&) override { ++ended; }
  unsigned every = 1;
  unsigned asked = 0;
  int fleets = 0;
  int started = 0;
  int finished = 0;
  int ended = 0;
  std::optional<SteadyTime> next;
};

TEST(MetricsTee, EachSinkGetsEveryEventAndAFleetViewOnlyWhenItWasDue) {
  CountingSink dashboard;
  CountingSink metrics;
  metrics.every = 2;
  TeeSink tee(dashboard, metrics);
  SteadyTime now{};
  for (int i = 0; i < 4; ++i) {
    if (tee.FleetDue(now)) tee.Fleet(FleetView{});
  }
  EXPECT_EQ(dashboard.fleets, 4);
  EXPECT_EQ(metrics.fleets, 2);
  tee.RunStarted(RunStartView{});
  tee.TestFinished("run-1", TestReport{});
  tee.RunEnded("run-1", RunSummary{});
  for (const CountingSink* sink : {&dashboard, &metrics}) {
    EXPECT_EQ(sink->started, 1);
    EXPECT_EQ(sink->finished, 1);
    EXPECT_EQ(sink->ended, 1);
  }
  // The earlier of the two wake-ups owed.
  EXPECT_EQ(tee.NextFleetAt(), std::nullopt);
  metrics.next = now + seconds(2);
  EXPECT_EQ(tee.NextFleetAt(), now + seconds(2));
  dashboard.next = now + seconds(1);
  EXPECT_EQ(tee.NextFleetAt(), now + seconds(1));
}

TEST(MetricsTee, APacerTakesAViewAtMostEveryIntervalAndOwesOneItTurnedDown) {
  FleetPacer pacer(milliseconds(250));
  SteadyTime t{};
  EXPECT_TRUE(pacer.Due(t));
  EXPECT_EQ(pacer.NextAt(), std::nullopt);
  EXPECT_FALSE(pacer.Due(t + milliseconds(100)));
  EXPECT_EQ(pacer.NextAt(), t + milliseconds(250));
  EXPECT_TRUE(pacer.Due(t + milliseconds(250)));
  EXPECT_EQ(pacer.NextAt(), std::nullopt);
}

}  // namespace
}  // namespace testfarm::coordinator
