#include "coordinator/history.h"

#include <algorithm>
#include <numeric>

namespace testfarm::coordinator {

namespace {

// Mean expected times by suite, from the timed tests added.
class SuiteMeans {
 public:
  void Add(const std::string& suite, const TestHistory& known) {
    if (!known.timed) return;
    auto& [total, count] = sums_[suite];
    total += known.expected.count();
    ++count;
  }
  std::map<std::string, Millis> Means() const {
    std::map<std::string, Millis> means;
    for (const auto& [suite, sum] : sums_) means[suite] = Millis(sum.first / sum.second);
    return means;
  }

 private:
  std::map<std::string, std::pair<int64_t, int64_t>> sums_;  // suite -> (total ms, tests)
};

}  // namespace

std::set<std::string> SuitesOf(const std::vector<TestSpec>& tests) {
  std::set<std::string> suites;
  for (const TestSpec& test : tests) suites.insert(test.suite);
  return suites;
}

std::vector<Millis> ExpectedDurations(const std::vector<TestSpec>& tests,
                                      const HistoryEstimates& history, Millis default_estimate) {
  SuiteMeans sums;  // over every test the history knows, in this run or not
  for (const auto& [name, known] : history) sums.Add(known.suite, known);
  const std::map<std::string, Millis> means = sums.Means();
  std::vector<Millis> expected;
  expected.reserve(tests.size());
  for (const TestSpec& test : tests) {
    auto known = history.find(test.name);
    if (known != history.end() && known->second.timed) {
      expected.push_back(known->second.expected);
    } else if (auto mean = means.find(test.suite); mean != means.end()) {
      expected.push_back(mean->second);
    } else {
      expected.push_back(default_estimate);
    }
  }
  return expected;
}

std::vector<std::size_t> StartOrder(const std::vector<TestSpec>& tests,
                                    const HistoryEstimates& history, Millis default_estimate) {
  const std::vector<Millis> expected = ExpectedDurations(tests, history, default_estimate);
  std::vector<bool> failed(tests.size(), false);
  for (std::size_t t = 0; t < tests.size(); ++t) {
    auto known = history.find(tests[t].name);
    failed[t] = known != history.end() && known->second.failed_last;
  }
  std::vector<std::size_t> order(tests.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (failed[a] != failed[b]) return static_cast<bool>(failed[a]);
    return expected[a] > expected[b];
  });
  return order;
}

std::map<std::string, Millis> ExpectedCaseTimes(const std::vector<TestSpec>& tests,
                                                const HistoryEstimates& history) {
  SuiteMeans sums;  // over the run's GoogleTest cases
  for (const TestSpec& test : tests) {
    if (!test.gtest()) continue;
    if (auto known = history.find(test.name); known != history.end()) {
      sums.Add(test.suite, known->second);
    }
  }
  return sums.Means();
}

AttemptRecord RecordOf(const TestReport& report, int64_t time_ms) {
  AttemptRecord record;
  record.test = report.name;
  record.suite = report.suite;
  record.outcome = StatusKey(report.state);
  record.duration_ms = std::max<int64_t>(0, report.duration.count());
  if (report.result) {
    record.peak_rss_kb = report.result->peak_rss_kb;
    record.cpu_ms = report.result->cpu_ms;
    // A process that ran to its end (or its timeout) says how long the test takes; one that
    // never started or was cancelled does not.
    const ExitState::Kind kind = report.result->state.kind();
    record.ran = kind == ExitState::Kind::kExited || kind == ExitState::Kind::kSignaled ||
                 kind == ExitState::Kind::kLeaked || kind == ExitState::Kind::kTimedOut;
  }
  record.worker = report.worker;
  record.attempt = report.attempt;
  record.iteration = report.iteration;
  record.time_ms = time_ms;
  return record;
}

}  // namespace testfarm::coordinator
