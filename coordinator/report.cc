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

namespace {

// "file.cc:22" or "file.cc:22: Failure": where, not what.
bool IsLocation(const std::string& line) {
  std::string text = line;
  const std::string failure = ": Failure";
  if (text.size() > failure.size() &&
      text.compare(text.size() - failure.size(), failure.size(), failure) == 0) {
    return true;
  }
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) return false;
  return text.find_first_not_of("0123456789", colon + 1) == std::string::npos;
}

// The line of a gtest failure message that says what went wrong: the first one that is not
// its location.
std::string Headline(const std::string& message) {
  std::string first;
  std::size_t start = 0;
  while (start < message.size()) {
    std::size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string line = message.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    if (first.empty()) first = line;
    if (IsLocation(line)) continue;
    first = line;
    break;
  }
  if (first.size() > 120) first = first.substr(0, 117) + "...";
  return first;
}

}  // namespace

std::string StatusReason(const TestReport& report) {
  if (report.state == JobState::kPassed) return {};
  if (!report.reason.empty()) return report.reason;
  if (!report.message.empty()) return Headline(report.message);
  if (report.state == JobState::kSkipped) return {};  // a skip's process exit says nothing
  if (report.result) return report.result->state.Describe();
  return {};
}

}  // namespace testfarm::coordinator
