#include "coordinator/report.h"

#include "coordinator/suite.h"

namespace testfarm::coordinator {

using Kind = ExitState::Kind;

const char* StatusWord(const TestReport& report) {
  switch (report.state) {
    case JobState::kPassed:
      return "PASS";
    case JobState::kExpired:
      return "LOST";
    case JobState::kNotRun:
    case JobState::kSkipped:
    case JobState::kPending:
    case JobState::kLeased:
      return "SKIP";
    case JobState::kCancelled:
      return "CANCEL";
    case JobState::kFailed:
      break;
  }
  if (!report.result) return "FAIL";
  switch (report.result->state.kind()) {
    case Kind::kExited:
      return "FAIL";
    case Kind::kSignaled:
      return "CRASH";
    case Kind::kTimedOut:
      return "TIMEOUT";
    case Kind::kSpawnFailed:
      return "ERROR";
    case Kind::kLeaked:
      return "LEAK";
    case Kind::kCancelled:
      return "CANCEL";
  }
  return "FAIL";
}

const char* SuiteKindName(SuiteKind kind) {
  switch (kind) {
    case SuiteKind::kAuto:
      return "auto";
    case SuiteKind::kPlain:
      return "plain";
    case SuiteKind::kGtest:
      return "gtest";
  }
  return "auto";
}

std::string StatusReason(const TestReport& report) {
  if (report.state == JobState::kPassed) return {};
  if (!report.reason.empty()) return report.reason;
  if (report.result) return report.result->state.Describe();
  return {};
}

}  // namespace testfarm::coordinator
