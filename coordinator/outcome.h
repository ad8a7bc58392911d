#pragma once
// What a finished job means for each test it ran. Pure: a job's tests and its process's result
// in, one verdict per test (or "run it again") out.
//
// Plain tests: the exit state, with CTest's WILL_FAIL and SKIP_RETURN_CODE applied.
// GoogleTest jobs: per-case status, time and failure text come from gtest's JSON report. A case
// the report does not vouch for (no report: a crash or timeout; a process that ended abnormally
// after reporting; a case missing from the report) is, in a batch, run again — in smaller
// batches, until alone (RerunParts) — so that a crash is pinned on exactly the case that
// crashed; alone, it fails with the reason.
#include <cstddef>
#include <string>
#include <vector>

#include "coordinator/test_spec.h"
#include "coordinator/test_status.h"
#include "protocol/messages.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

struct CaseVerdict {
  std::size_t test = 0;
  TestStatus state = TestStatus::kFailed;  // kPassed, kFailed, kSkipped or kCancelled
  std::string reason;                      // short, when the process state does not say it
  std::string message;                     // gtest's failure or skip text
  Millis duration{0};
};

struct JobVerdicts {
  std::vector<CaseVerdict> decided;
  std::vector<std::size_t> rerun;  // batch cases to run again (see RerunParts)
};

// `job_tests` are indices into `tests`; `batch` says whether they shared one process.
JobVerdicts Interpret(const std::vector<std::size_t>& job_tests, bool batch,
                      const std::vector<TestSpec>& tests, const protocol::JobResult& result);

}  // namespace testfarm::coordinator
