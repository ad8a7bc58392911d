#pragma once
// What the run history decides: the order tests start in and the expected time of a batched
// suite's cases, from what earlier runs recorded. Pure: the store (coordinator/history_store.h)
// reads and writes the file; this only sees what it read.
//
// The order: tests that failed the last time they ran first (the quickest answer to "is it still
// broken?"), then the longest expected first (LPT: the long ones do not end up alone at the end).
// A test with no history is expected to take its suite's mean over the tests that have one,
// else `default_estimate`.
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coordinator/report.h"
#include "coordinator/test_spec.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

// What the history knows of one test (by its full name).
struct TestHistory {
  std::string suite;
  Millis expected{0};        // recent duration (a moving average); 0 with no timed attempt
  bool timed = false;        // `expected` comes from attempts that ran
  bool failed_last = false;  // its last decisive attempt (passed, failed, lost) failed
};
using HistoryEstimates = std::map<std::string, TestHistory>;

// The suites of `tests`: what a history is asked about (HistoryStore::Estimates).
std::set<std::string> SuitesOf(const std::vector<TestSpec>& tests);

inline constexpr Millis kDefaultEstimate{1000};

// The expected duration of each test (in `tests`' order): its own, else its suite's mean, else
// `default_estimate`.
std::vector<Millis> ExpectedDurations(const std::vector<TestSpec>& tests,
                                      const HistoryEstimates& history,
                                      Millis default_estimate = kDefaultEstimate);

// A permutation of 0..tests.size()-1: failed last time first, then longest expected first; ties
// keep the given order.
std::vector<std::size_t> StartOrder(const std::vector<TestSpec>& tests,
                                    const HistoryEstimates& history,
                                    Millis default_estimate = kDefaultEstimate);

// Per GoogleTest suite (by suite name) with any timed case: its cases' mean expected time, so
// --isolation batch sizes its batches from the first one.
std::map<std::string, Millis> ExpectedCaseTimes(const std::vector<TestSpec>& tests,
                                                const HistoryEstimates& history);

// One test attempt as the history keeps it.
struct AttemptRecord {
  std::string test;
  std::string suite;
  std::string outcome;  // passed, failed, lost, skipped, cancelled, not_run (the JSON's words)
  int64_t duration_ms = 0;
  uint64_t peak_rss_kb = 0;
  uint64_t cpu_ms = 0;
  std::string worker;
  unsigned attempt = 1;
  unsigned iteration = 1;
  bool ran = false;     // a process ran it: its duration counts towards the estimate
  int64_t time_ms = 0;  // when it finished, in ms since the Unix epoch
};

// The record of `report`, finished at `time_ms`.
AttemptRecord RecordOf(const TestReport& report, int64_t time_ms);

}  // namespace testfarm::coordinator
