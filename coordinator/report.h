#pragma once
// What a run reports: one TestReport per finished test, a RunSummary at the end, and the
// Reporter interface that receives them (console today; JUnit/JSON reporters plug in here).
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/test_status.h"
#include "protocol/messages.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

// One finished attempt of one test.
struct TestReport {
  std::size_t test = 0;   // its index among the run's selected tests
  std::string name;       // full name: the suite's name, or "suite::Suite.Case" for a gtest case
  std::string suite;      // the suite's name
  std::string case_name;  // "Suite.Case" for a gtest case; empty for a plain suite
  TestStatus state = TestStatus::kNotRun;
  std::optional<protocol::JobResult> result;  // the process that ran it (a batch's is shared);
                                              // absent for expired, skipped or not-run tests
  std::string reason;   // short: why it failed or was skipped, when the result does not say
  std::string message;  // long: gtest's failure messages for this case
  Millis duration{0};   // the case's own time (gtest's JSON), else the process's
  std::string worker;   // the worker's name
  uint32_t slot = 0;
  Millis started_at{0};  // when its process started / ended, since the run started
  Millis finished_at{0};
  unsigned attempt = 1;  // 2 for a case re-run alone after its batch could not report it, or
                         // for a retry (--retries)
  bool batch = false;    // it ran inside a batch of cases
  // This attempt failed and the test runs again (--retries): not the test's last word, and not
  // counted; the attempt that follows is.
  bool retried = false;
  unsigned iteration = 1;  // which repeat of the selection (--repeat, --stress-duration)
};

// What a --coverage run collected (the merged profiles, not yet exported).
struct CoverageSummary {
  std::vector<std::filesystem::path> profiles;  // one indexed profile per worker that had any
  uint64_t raw_profiles = 0;                    // non-empty raw profiles the tests left
  uint64_t merged = 0;                          // of those, merged by the workers
  std::vector<std::string> empty;               // "test (why)": empty or missing profiles
  std::vector<std::string> bad;                 // "worker: test: file: why": not mergeable
  std::vector<std::string> errors;              // "worker: why": profiles that were lost
  Millis collect{0};  // from the end of the last test to the last profile received
};

struct RunSummary {
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t skipped_tests = 0;  // skipped by the test itself, or disabled
  std::size_t cancelled = 0;      // terminated because the run stopped
  std::size_t not_run = 0;        // never started because the run stopped
  std::size_t flaky = 0;          // failed, then passed on a retry
  unsigned iterations = 1;        // iterations of the selection started (--repeat)
  bool interrupted = false;
  std::string stop_reason;
  Millis wall{0};
  std::vector<TestReport> reports;  // every reported attempt, in the order they finished
  CoverageSummary coverage;

  std::size_t total() const {
    return passed + failed + skipped_tests + cancelled + not_run + flaky;
  }
  // The flaky tests' final reports, in the order they finished.
  std::vector<const TestReport*> Flaky() const {
    std::vector<const TestReport*> out;
    for (const TestReport& r : reports) {
      if (r.state == TestStatus::kFlaky) out.push_back(&r);
    }
    return out;
  }
  // The failed reports, in the order they finished.
  std::vector<const TestReport*> Failures() const {
    std::vector<const TestReport*> out;
    for (const TestReport& r : reports) {
      if (IsFailure(r.state) && !r.retried) out.push_back(&r);
    }
    return out;
  }
};

// "N passed, N failed" followed by ", N flaky", ", N skipped", ", N cancelled", ", N not run"
// for those that are not 0: the console's last line, with the same totals as the JUnit and JSON
// reports.
std::string SummaryLine(const RunSummary& summary);

// "PASS", "FAIL", "CRASH", "TIMEOUT", "ERROR", "LEAK", "CANCEL", "NOTRUN", "LOST", "SKIP",
// "FLAKY".
// A gtest case that failed inside a process that exited normally is "FAIL".
const char* StatusWord(const TestReport& report);
// The JSON report's lowercase status: "passed", "failed", "lost" (expired), "cancelled",
// "not_run", "skipped", "flaky".
const char* StatusKey(TestStatus state);
// "exit 1", "SIGSEGV", "failed to start: No such file or directory", ...; empty for a pass.
std::string StatusReason(const TestReport& report);

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void OnRunStart(std::size_t test_count) = 0;
  virtual void OnWorkerJoined(const std::string& name, unsigned slots) = 0;
  // A test (or a batch of cases, "suite (batch)") began to run on `worker`. A test requeued
  // after its worker was lost starts again.
  virtual void OnTestStarted(const std::string& /*name*/, const std::string& /*worker*/) {}
  // A test has been running longer than --slow-timeout; said once per attempt.
  virtual void OnTestSlow(const std::string& /*name*/, Millis /*running*/) {}
  // What is running now: how many, and the one running longest (empty when none) and for how
  // long. Called whenever the run loop wakes, for a progress display.
  virtual void OnRunning(std::size_t /*count*/, const std::string& /*longest*/,
                         Millis /*longest_for*/) {}
  virtual void OnTestFinished(const TestReport& report, std::size_t running) = 0;
  virtual void OnRunEnd(const RunSummary& summary) = 0;
};

// Passes everything on to `inner`: the base of the tees that also record the run (history) or
// show it (dashboard), which override what they add to.
class ForwardingReporter : public Reporter {
 public:
  explicit ForwardingReporter(Reporter& inner) : inner_(inner) {}
  void OnRunStart(std::size_t test_count) override { inner_.OnRunStart(test_count); }
  void OnWorkerJoined(const std::string& name, unsigned slots) override {
    inner_.OnWorkerJoined(name, slots);
  }
  void OnTestStarted(const std::string& name, const std::string& worker) override {
    inner_.OnTestStarted(name, worker);
  }
  void OnTestSlow(const std::string& name, Millis running) override {
    inner_.OnTestSlow(name, running);
  }
  void OnRunning(std::size_t count, const std::string& longest, Millis longest_for) override {
    inner_.OnRunning(count, longest, longest_for);
  }
  void OnTestFinished(const TestReport& report, std::size_t running) override {
    inner_.OnTestFinished(report, running);
  }
  void OnRunEnd(const RunSummary& summary) override { inner_.OnRunEnd(summary); }

 protected:
  Reporter& inner_;
};

}  // namespace testfarm::coordinator
