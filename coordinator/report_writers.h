#pragma once
// Machine-readable reports of a finished run: JUnit XML (for Jenkins, GitLab, GitHub test
// reporters), testfarm's JSON (one object per test attempt; schema in docs/json-report.md) and a
// Chrome trace-event file (one track per worker slot; open it in Perfetto or chrome://tracing).
// Pure functions from reports to text; writing files is the caller's business.
#include <string>
#include <vector>

#include "coordinator/report.h"

namespace testfarm::coordinator {

struct RunInfo {
  std::string hostname;
  std::string started_utc;  // ISO 8601, e.g. "2026-11-26T13:05:00Z"
  Millis wall{0};
};

// <testsuites> with one <testsuite> per suite (in first-seen order) and one <testcase> per
// report: classname = the gtest suite ("Suite" of "Suite.Case") or the suite's name,
// name = the case ("Case") or the suite's name, time in seconds. Failures (any failed state)
// get <failure message="..." type="STATUS">details</failure>; skipped, cancelled and not-run
// tests get <skipped message="..."/>. Captured stdout/stderr go in <system-out>/<system-err>.
// Characters not allowed in XML 1.0 are replaced by U+FFFD; invalid UTF-8 bytes too.
std::string JunitXml(const std::vector<TestReport>& reports, const RunInfo& info);

// {"testfarm_report": 1, "run": {...}, "attempts": [ {...}, ... ]}; see docs/json-report.md.
std::string JsonReport(const std::vector<TestReport>& reports, const RunInfo& info);

// Chrome trace-event JSON: a complete event ("ph": "X") per attempt on pid = worker,
// tid = slot, named by the test; the cases of a batch are laid out one after another inside
// their process's span using their own durations.
std::string ChromeTrace(const std::vector<TestReport>& reports, const RunInfo& info);

}  // namespace testfarm::coordinator
