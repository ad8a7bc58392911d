#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/test_ledger.h"

namespace testfarm::coordinator {
namespace {

using std::chrono::milliseconds;

class Recorder : public Reporter {
 public:
  void OnRunStart(std::size_t) override {}
  void OnWorkerJoined(const std::string&, unsigned) override {}
  void OnTestFinished(const TestReport& report, std::size_t) override {
    names.push_back(report.name);
  }
  void OnRunEnd(const RunSummary& summary) override { ended_with = summary.total(); }
  std::vector<std::string> names;
  std::size_t ended_with = 0;
};

std::vector<TestSpec> Tests(int n) {
  std::vector<TestSpec> tests;
  for (int i = 0; i < n; ++i) {
    TestSpec t;
    t.name = "t" + std::to_string(i);
    t.suite = t.name;
    tests.push_back(t);
  }
  return tests;
}

TestReport With(TestStatus status, bool batch = false) {
  TestReport report;
  report.state = status;
  report.batch = batch;
  return report;
}

TEST(TestLedger, EachTestIsRecordedOnceAndTheRestAreNotRunWithWhy) {
  FakeClock clock;
  Recorder reporter;
  std::vector<TestSpec> tests = Tests(4);
  TestLedger ledger(clock, tests, reporter);
  ledger.Start();
  EXPECT_TRUE(ledger.Record(0, With(TestStatus::kPassed), nullptr, 0));
  EXPECT_FALSE(ledger.Record(0, With(TestStatus::kFailed), nullptr, 0)) << "said once";
  EXPECT_TRUE(ledger.Record(2, With(TestStatus::kExpired), nullptr, 0));
  ledger.RecordTheRestNotRun("the run stopped: interrupted");
  RunSummary summary = ledger.Close();
  EXPECT_EQ(reporter.names, (std::vector<std::string>{"t0", "t2", "t1", "t3"}));
  EXPECT_EQ(summary.passed, 1u);
  EXPECT_EQ(summary.failed, 1u) << "expired counts as failed";
  EXPECT_EQ(summary.not_run, 2u);
  EXPECT_EQ(summary.total(), 4u);
  EXPECT_EQ(reporter.ended_with, 4u);
  EXPECT_EQ(summary.reports[2].reason, "the run stopped: interrupted");
}

TEST(TestLedger, AFailureKeepsItsOutputAPassKeepsTheTailABatchPassNone) {
  FakeClock clock;
  Recorder reporter;
  std::vector<TestSpec> tests = Tests(3);
  TestLedger ledger(clock, tests, reporter);
  protocol::JobResult result;
  result.stdout_text = std::string(100 * 1024, 'o');
  result.report = "a big gtest report";
  ledger.Record(0, With(TestStatus::kFailed), &result, 0);
  ledger.Record(1, With(TestStatus::kPassed), &result, 0);
  ledger.Record(2, With(TestStatus::kPassed, /*batch=*/true), &result, 0);
  const auto& reports = ledger.summary().reports;
  EXPECT_EQ(reports[0].result->stdout_text.size(), 100u * 1024);
  EXPECT_TRUE(reports[0].result->report.empty()) << "the report file is read, not kept";
  EXPECT_LT(reports[1].result->stdout_text.size(), 70u * 1024);
  EXPECT_NE(reports[1].result->stdout_text.find("earlier bytes not kept"), std::string::npos);
  EXPECT_TRUE(reports[2].result->stdout_text.empty());
}

TEST(TestLedger, TimesCountFromTheStartAndTheProcessDuration) {
  FakeClock clock;
  Recorder reporter;
  std::vector<TestSpec> tests = Tests(1);
  TestLedger ledger(clock, tests, reporter);
  ledger.Start();
  clock.Advance(milliseconds(900));
  protocol::JobResult result;
  result.duration_ms = 300;
  ledger.Record(0, With(TestStatus::kPassed), &result, 0);
  const TestReport& report = ledger.summary().reports[0];
  EXPECT_EQ(report.finished_at, milliseconds(900));
  EXPECT_EQ(report.started_at, milliseconds(600));
  clock.Advance(milliseconds(100));
  EXPECT_EQ(ledger.Close().wall, milliseconds(1000));
}

}  // namespace
}  // namespace testfarm::coordinator
