#include "coordinator/test_ledger.h"

#include <algorithm>

namespace testfarm::coordinator {

namespace {

// A result without its output and report, which can be megabytes.
protocol::JobResult WithoutBulk(const protocol::JobResult& result) {
  protocol::JobResult copy;
  copy.lease = result.lease;
  copy.job_id = result.job_id;
  copy.state = result.state;
  copy.duration_ms = result.duration_ms;
  copy.slot = result.slot;
  copy.stdout_dropped = result.stdout_dropped;
  copy.stderr_dropped = result.stderr_dropped;
  copy.report_error = result.report_error;
  copy.peak_rss_kb = result.peak_rss_kb;
  copy.cpu_ms = result.cpu_ms;
  return copy;
}

constexpr std::size_t kKeptPassingOutput = 64 * 1024;

std::string Tail(const std::string& text) {
  if (text.size() <= kKeptPassingOutput) return text;
  return "[testfarm: " + std::to_string(text.size() - kKeptPassingOutput) +
         " earlier bytes not kept]\n" + text.substr(text.size() - kKeptPassingOutput);
}

}  // namespace

TestLedger::TestLedger(const Clock& clock, const std::vector<TestSpec>& tests, Reporter& reporter)
    : clock_(clock),
      tests_(tests),
      reporter_(reporter),
      reported_(tests.size(), false),
      started_(clock.Now()) {
  // One report per test unless tests are retried: the vector is not regrown (and left half
  // empty) on the way to a million.
  summary_.reports.reserve(tests.size());
}

bool TestLedger::Record(std::size_t test, TestReport report, const protocol::JobResult* result,
                        std::size_t running) {
  if (reported_[test]) return false;  // each test is reported exactly once
  reported_[test] = !report.retried;  // a retried attempt is not its last word
  const TestSpec& spec = tests_[test];
  report.test = test;
  report.name = spec.name;
  report.suite = spec.suite;
  report.case_name = spec.gtest_case;
  report.iteration = spec.iteration;
  if (result != nullptr) {
    report.result = WithoutBulk(*result);
    // A failure keeps all its output. A batch's output belongs to its failures; a passing test
    // keeps the tail, so a run of many chatty tests does not hold all of it in memory.
    if (IsFailure(report.state) || report.retried) {
      report.result->stdout_text = result->stdout_text;
      report.result->stderr_text = result->stderr_text;
    } else if (!report.batch) {
      report.result->stdout_text = Tail(result->stdout_text);
      report.result->stderr_text = Tail(result->stderr_text);
    }
    report.slot = result->slot;
  }
  report.finished_at = std::chrono::duration_cast<Millis>(clock_.Now() - started_);
  Millis process = result ? Millis(static_cast<long long>(result->duration_ms)) : report.duration;
  report.started_at = std::max(Millis(0), report.finished_at - process);
  // A retried attempt is not counted: the test's last attempt is.
  switch (report.retried ? TestStatus::kFlaky : report.state) {
    case TestStatus::kPassed:
      ++summary_.passed;
      break;
    case TestStatus::kFlaky:
      if (!report.retried) ++summary_.flaky;
      break;
    case TestStatus::kSkipped:
      ++summary_.skipped_tests;
      break;
    case TestStatus::kCancelled:
      ++summary_.cancelled;
      break;
    case TestStatus::kNotRun:
      ++summary_.not_run;
      break;
    case TestStatus::kFailed:
    case TestStatus::kExpired:
      ++summary_.failed;
      break;
  }
  summary_.reports.push_back(std::move(report));
  reporter_.OnTestFinished(summary_.reports.back(), running);
  return true;
}

void TestLedger::RecordTheRestNotRun(const std::string& reason) {
  for (std::size_t t = 0; t < tests_.size(); ++t) {
    if (reported_[t]) continue;
    TestReport report;
    report.state = TestStatus::kNotRun;
    report.reason = reason;
    Record(t, std::move(report), nullptr, 0);
  }
}

RunSummary TestLedger::Close() {
  summary_.wall = std::chrono::duration_cast<Millis>(clock_.Now() - started_);
  reporter_.OnRunEnd(summary_);
  // Moved out, not copied: a run of a million tests would hold its reports twice.
  return std::move(summary_);
}

}  // namespace testfarm::coordinator
