#pragma once
// What a run reports: one TestReport per finished test, a RunSummary at the end, and the
// Reporter interface that receives them (console today; JUnit/JSON reporters plug in here).
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/scheduler.h"
#include "protocol/messages.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

struct TestReport {
  std::string name;
  JobState state = JobState::kPending;
  std::optional<protocol::JobResult> result;  // absent for expired / not-run tests
  std::string reason;                         // why, when there is no result to say it
  std::string worker;                         // the worker's name
};

struct RunSummary {
  std::size_t passed = 0;
  std::size_t failed = 0;
  std::size_t cancelled = 0;  // terminated because the run stopped
  std::size_t not_run = 0;    // never started because the run stopped
  bool interrupted = false;
  std::string stop_reason;
  Millis wall{0};
  std::vector<TestReport> failures;  // in the order they finished

  std::size_t skipped() const { return cancelled + not_run; }
  std::size_t total() const { return passed + failed + skipped(); }
};

// "PASS", "FAIL", "CRASH", "TIMEOUT", "ERROR", "LEAK", "CANCEL", "LOST", "SKIP".
const char* StatusWord(const TestReport& report);
// "exit 1", "SIGSEGV", "failed to start: No such file or directory", ...; empty for a pass.
std::string StatusReason(const TestReport& report);

class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void OnRunStart(std::size_t test_count) = 0;
  virtual void OnWorkerJoined(const std::string& name, unsigned slots) = 0;
  virtual void OnTestFinished(const TestReport& report, std::size_t running) = 0;
  virtual void OnRunEnd(const RunSummary& summary) = 0;
};

}  // namespace testfarm::coordinator
