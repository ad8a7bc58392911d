#include "coordinator/outcome.h"

#include <map>

#include "coordinator/gtest.h"

namespace testfarm::coordinator {

namespace {

using Kind = ExitState::Kind;

CaseVerdict PlainVerdict(std::size_t index, const TestSpec& test, const protocol::JobResult& r) {
  CaseVerdict v;
  v.test = index;
  v.duration = Millis(static_cast<long long>(r.duration_ms));
  const ExitState& state = r.state;
  if (state.kind() == Kind::kCancelled) {
    v.state = JobState::kCancelled;
  } else if (state.kind() != Kind::kExited) {
    v.state = JobState::kFailed;  // crash, timeout, leak, could not start: never inverted
  } else if (test.skip_return_code && state.exit_code() == *test.skip_return_code) {
    v.state = JobState::kSkipped;
    v.reason = "exit " + std::to_string(state.exit_code()) + " (its SKIP_RETURN_CODE)";
  } else if (test.will_fail) {
    v.state = state.exit_code() != 0 ? JobState::kPassed : JobState::kFailed;
    if (v.state == JobState::kFailed) v.reason = "exit 0, but it is expected to fail (WILL_FAIL)";
  } else {
    v.state = state.exit_code() == 0 ? JobState::kPassed : JobState::kFailed;
  }
  return v;
}

// gtest exits 0 or 1 after writing its report; anything else means the process went wrong
// after (or instead of) reporting.
bool EndedNormally(const ExitState& state) {
  return state.kind() == Kind::kExited && (state.exit_code() == 0 || state.exit_code() == 1);
}

CaseVerdict FromGtest(std::size_t index, const GtestCaseResult& c) {
  CaseVerdict v;
  v.test = index;
  v.duration = c.duration;
  v.message = c.message;
  switch (c.status) {
    case GtestCaseResult::Status::kPassed:
      v.state = JobState::kPassed;
      break;
    case GtestCaseResult::Status::kFailed:
      v.state = JobState::kFailed;
      break;
    case GtestCaseResult::Status::kSkipped:
      v.state = JobState::kSkipped;
      v.reason = "GTEST_SKIP";
      if (!c.message.empty()) v.reason += ": " + c.message.substr(0, c.message.find('\n'));
      break;
  }
  return v;
}

}  // namespace

JobVerdicts Interpret(const std::vector<std::size_t>& job_tests, bool batch,
                      const std::vector<TestSpec>& tests, const protocol::JobResult& result) {
  JobVerdicts out;
  if (result.state.kind() == Kind::kCancelled) {
    // A cancelled test ran until it was stopped: that time is its duration.
    Millis ran(static_cast<long long>(result.duration_ms));
    for (std::size_t t : job_tests) out.decided.push_back({t, JobState::kCancelled, {}, {}, ran});
    return out;
  }
  if (job_tests.size() == 1 && !tests[job_tests[0]].gtest()) {
    out.decided.push_back(PlainVerdict(job_tests[0], tests[job_tests[0]], result));
    return out;
  }

  // Why the report cannot vouch for a case it does not list.
  std::string no_report;
  std::map<std::string, GtestCaseResult> reported;
  if (!result.report_error.empty()) {
    no_report = "gtest's JSON report: " + result.report_error;
  } else {
    // gtest 1.12 keeps skip messages out of the JSON; its stdout has them.
    Result<std::vector<GtestCaseResult>> parsed = ParseGtestJson(result.report, result.stdout_text);
    if (!parsed) {
      no_report = "gtest's JSON report is unreadable: " + parsed.error().message;
    } else {
      for (GtestCaseResult& c : *parsed) reported.emplace(c.name, std::move(c));
    }
  }
  bool normal = EndedNormally(result.state);
  for (std::size_t t : job_tests) {
    auto it = reported.find(tests[t].gtest_case);
    bool vouched =
        it != reported.end() && (normal || it->second.status != GtestCaseResult::Status::kPassed);
    if (vouched) {
      out.decided.push_back(FromGtest(t, it->second));
      continue;
    }
    if (batch) {
      out.rerun_alone.push_back(t);
      continue;
    }
    CaseVerdict v;
    v.test = t;
    v.state = JobState::kFailed;
    v.duration = Millis(static_cast<long long>(result.duration_ms));
    if (!normal) {
      v.reason = result.state.Describe();
    } else if (!no_report.empty()) {
      v.reason = no_report;
    } else {
      v.reason = "the case is missing from gtest's JSON report";
    }
    out.decided.push_back(std::move(v));
  }
  return out;
}

}  // namespace testfarm::coordinator
