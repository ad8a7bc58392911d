#pragma once
// Machine-readable reports of a finished run: JUnit XML (for Jenkins, GitLab, GitHub test
// reporters), testfarm's JSON (one object per test attempt; schema in docs/json-report.md) and a
// Chrome trace-event file (one track per worker slot; open it in Perfetto or chrome://tracing).
// Each is written to a stream a test (or trace event) at a time, so the text in memory is never
// the whole report; the string forms are for tests and small runs.
#include <ostream>
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
// report: classname = the gtest suite ("Suite" of "Suite.Case", split at the first '.') or the
// suite's name, name = the case ("Case") or the suite's name, time in seconds (3 decimals).
// A test that failed on its own terms (StatusWord "FAIL": an assertion, a non-zero exit) gets
// <failure type="FAIL">; one that did not finish on its own terms (CRASH, TIMEOUT, LEAK, ERROR,
// LOST, or CANCEL of a failed job) gets <error type="CRASH" ...>. Both carry
// message = StatusReason and the gtest message (else the reason) as text. Skipped, cancelled and
// not-run tests get <skipped message="..."/>. Captured stdout/stderr go in
// <system-out>/<system-err> (for a batch case only when it failed: a batch's output is shared).
// Characters not allowed in XML 1.0 are replaced by U+FFFD; invalid UTF-8 bytes too.
// Validates against tests/junit/junit.xsd.
void WriteJunitXml(const std::vector<TestReport>& reports, const RunInfo& info, std::ostream& out);
std::string JunitXml(const std::vector<TestReport>& reports, const RunInfo& info);

// {"testfarm_report": 1, "run": {...}, "attempts": [ {...}, ... ]}; see docs/json-report.md.
void WriteJsonReport(const std::vector<TestReport>& reports, const RunInfo& info,
                     std::ostream& out);
std::string JsonReport(const std::vector<TestReport>& reports, const RunInfo& info);

// Chrome trace-event JSON: a complete event ("ph": "X") per attempt on pid = worker,
// tid = slot, named by the test; the cases of a batch are laid out one after another inside
// their process's span using their own durations.
void WriteChromeTrace(const std::vector<TestReport>& reports, const RunInfo& info,
                      std::ostream& out);
std::string ChromeTrace(const std::vector<TestReport>& reports, const RunInfo& info);

}  // namespace testfarm::coordinator
