#include "coordinator/outcome.h"

#include <map>
#include <optional>

#include "coordinator/gtest.h"

namespace testfarm::coordinator {

namespace {

using Kind = ExitState::Kind;

// "'a'" or "'a', 'b'".
std::string Quoted(const std::vector<std::string>& patterns) {
  std::string text;
  for (const std::string& p : patterns) text += (text.empty() ? "'" : ", '") + p + "'";
  return text;
}

std::optional<std::string> FoundInOutput(const std::vector<std::string>& patterns,
                                         const protocol::JobResult& r) {
  if (patterns.empty()) return std::nullopt;
  if (auto found = FirstMatch(patterns, r.stdout_text)) return found;
  return FirstMatch(patterns, r.stderr_text);
}

// As ctest decides it (cmCTestRunTest::EndTest): a process that exited is skipped by its
// SKIP_REGULAR_EXPRESSION or SKIP_RETURN_CODE; otherwise it succeeds when no FAIL_ expression
// matches, a PASS_ expression matches if there are any, and — only without PASS_ expressions —
// it exited 0. WILL_FAIL turns success around.
CaseVerdict PlainVerdict(std::size_t index, const TestSpec& test, const protocol::JobResult& r) {
  CaseVerdict v;
  v.test = index;
  v.duration = Millis(static_cast<long long>(r.duration_ms));
  const ExitState& state = r.state;
  const OutputRules& rules = test.settings().output_rules;
  if (state.kind() == Kind::kCancelled) {
    v.state = TestStatus::kCancelled;
    return v;
  }
  if (state.kind() != Kind::kExited) {
    v.state = TestStatus::kFailed;  // crash, timeout, leak, could not start: never inverted
    return v;
  }
  if (auto skip = FoundInOutput(rules.skip, r)) {
    v.state = TestStatus::kSkipped;
    v.reason = "its output matches SKIP_REGULAR_EXPRESSION '" + *skip + "'";
    return v;
  }
  if (test.skip_return_code && state.exit_code() == *test.skip_return_code) {
    v.state = TestStatus::kSkipped;
    v.reason = "exit " + std::to_string(state.exit_code()) + " (its SKIP_RETURN_CODE)";
    return v;
  }
  std::string why_not;  // why it did not succeed, when it did not
  if (auto fail = FoundInOutput(rules.fail, r)) {
    why_not = "its output matches FAIL_REGULAR_EXPRESSION '" + *fail + "'";
  } else if (!rules.pass.empty()) {
    if (!FoundInOutput(rules.pass, r)) {
      why_not = "its output matches no PASS_REGULAR_EXPRESSION (" + Quoted(rules.pass) + ")";
    }
  } else if (state.exit_code() != 0) {
    why_not = state.Describe();
  }
  bool success = why_not.empty();
  if (test.will_fail) {
    v.state = success ? TestStatus::kFailed : TestStatus::kPassed;
    if (success) {
      v.reason =
          (rules.pass.empty() ? state.Describe() : "its output matches a PASS_REGULAR_EXPRESSION") +
          ", but it is expected to fail (WILL_FAIL)";
    }
    return v;
  }
  v.state = success ? TestStatus::kPassed : TestStatus::kFailed;
  // A plain exit code speaks for itself (the status line shows it); a rule needs saying.
  if (!success && why_not != state.Describe()) v.reason = why_not;
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
      v.state = TestStatus::kPassed;
      break;
    case GtestCaseResult::Status::kFailed:
      v.state = TestStatus::kFailed;
      break;
    case GtestCaseResult::Status::kSkipped:
      v.state = TestStatus::kSkipped;
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
    for (std::size_t t : job_tests) out.decided.push_back({t, TestStatus::kCancelled, {}, {}, ran});
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
      out.rerun.push_back(t);
      continue;
    }
    CaseVerdict v;
    v.test = t;
    v.state = TestStatus::kFailed;
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
