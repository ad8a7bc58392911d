#pragma once
// A run's ledger: every selected test is reported exactly once, whatever stops the run, and the
// counts the console, JUnit and JSON show are the ledger's. Pure and clock-injected: reports get
// their times from the clock, and go to the Reporter as they are recorded.
#include <cstddef>
#include <string>
#include <vector>

#include "coordinator/report.h"
#include "coordinator/test_spec.h"
#include "protocol/messages.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

class TestLedger {
 public:
  // `tests` must outlive the ledger.
  TestLedger(const Clock& clock, const std::vector<TestSpec>& tests, Reporter& reporter);

  // The run starts now: report times count from here.
  void Start() { started_ = clock_.Now(); }
  SteadyTime started() const { return started_; }

  // Records `report` (its state, reason, message, duration, worker, attempt, batch) for test
  // `test`, with the process that ran it if any. A failure keeps its output; a passing test
  // keeps the tail. Returns false, recording nothing, if the test was already reported. A
  // `retried` report is an attempt before the test's last: kept and shown, but not counted, and
  // the test still waits for its report.
  // `running`: jobs still out, for the reporter's progress.
  bool Record(std::size_t test, TestReport report, const protocol::JobResult* result,
              std::size_t running);
  bool Reported(std::size_t test) const { return reported_[test]; }
  // Tests were appended to `tests` (the next iteration of a repeated run).
  void TestsAdded() { reported_.resize(tests_.size(), false); }
  // Every test not yet reported, reported not run with `reason`.
  void RecordTheRestNotRun(const std::string& reason);

  // The summary so far (coverage and stop fields are the run's to fill).
  RunSummary& summary() { return summary_; }
  // Ends the ledger: the wall time is taken, the reporter gets the summary, and the summary is
  // moved out (the ledger keeps nothing after).
  RunSummary Close();

 private:
  const Clock& clock_;
  const std::vector<TestSpec>& tests_;
  Reporter& reporter_;
  std::vector<bool> reported_;
  RunSummary summary_;
  SteadyTime started_;
};

}  // namespace testfarm::coordinator
