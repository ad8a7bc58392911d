#include "coordinator/report.h"

#include <string>
#include <vector>

#include "coordinator/suite.h"

namespace testfarm::coordinator {

using Kind = ExitState::Kind;

std::string SummaryLine(const RunSummary& summary) {
  std::string line =
      std::to_string(summary.passed) + " passed, " + std::to_string(summary.failed) + " failed";
  const std::pair<std::size_t, const char*> others[] = {{summary.flaky, "flaky"},
                                                        {summary.skipped_tests, "skipped"},
                                                        {summary.cancelled, "cancelled"},
                                                        {summary.not_run, "not run"}};
  for (const auto& [count, what] : others) {
    if (count > 0) line += ", " + std::to_string(count) + " " + what;
  }
  return line;
}

const char* StatusWord(const TestReport& report) {
  switch (report.state) {
    case TestStatus::kPassed:
      return "PASS";
    case TestStatus::kExpired:
      return "LOST";
    case TestStatus::kNotRun:
      return "NOTRUN";
    case TestStatus::kSkipped:
      return "SKIP";
    case TestStatus::kCancelled:
      return "CANCEL";
    case TestStatus::kFlaky:
      return "FLAKY";
    case TestStatus::kFailed:
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

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// "/src/math_test.cc:22: Failure" -> "math_test.cc:22".
std::string ShortLocation(std::string line) {
  const std::string failure = ": Failure";
  if (line.size() > failure.size() && line.ends_with(failure))
    line.resize(line.size() - failure.size());
  std::size_t slash = line.rfind('/', line.rfind(':'));
  return slash == std::string::npos ? line : line.substr(slash + 1);
}

// EXPECT_EQ's "Expected equality of these values:" block -> "a == b (1 vs 2)": operands are
// indented by two spaces, their values ("    Which is: 1") by four.
std::string Equality(const std::vector<std::string>& lines, std::size_t after) {
  std::vector<std::string> operands;
  std::vector<std::string> values;
  for (std::size_t i = after; i < lines.size() && operands.size() <= 2; ++i) {
    const std::string& line = lines[i];
    if (line.starts_with("    Which is: ")) {
      if (!values.empty()) values.back() = line.substr(14);
    } else if (line.starts_with("  ") && !line.starts_with("   ")) {
      if (operands.size() == 2) break;
      operands.push_back(line.substr(2));
      values.push_back(line.substr(2));
    } else {
      break;
    }
  }
  if (operands.size() != 2) return {};
  return operands[0] + " == " + operands[1] + " (" + values[0] + " vs " + values[1] + ")";
}

// What a gtest failure message says went wrong, in one line: where (file:line) and what (the
// expression, e.g. "a == b (1 vs 2)" for EXPECT_EQ), not "Expected equality of these values:".
std::string Headline(const std::string& message) {
  std::vector<std::string> lines = Lines(message);
  std::string where;
  std::string what;
  for (std::size_t i = 0; i < lines.size() && what.empty(); ++i) {
    const std::string& line = lines[i];
    if (line.empty()) continue;
    if (IsLocation(line)) {
      if (where.empty()) where = ShortLocation(line);
      continue;
    }
    what = line;
    if (line == "Expected equality of these values:") {
      if (std::string equality = Equality(lines, i + 1); !equality.empty()) what = equality;
    }
  }
  std::string headline = where.empty() ? what : what.empty() ? where : where + ": " + what;
  if (headline.size() > 120) headline = headline.substr(0, 117) + "...";
  return headline;
}

}  // namespace

std::string StatusReason(const TestReport& report) {
  if (report.state == TestStatus::kPassed) return {};
  if (!report.reason.empty()) return report.reason;
  if (!report.message.empty()) return Headline(report.message);
  if (report.state == TestStatus::kSkipped) return {};  // a skip's process exit says nothing
  if (report.result) return report.result->state.Describe();
  return {};
}

const char* StatusKey(TestStatus state) {
  switch (state) {
    case TestStatus::kPassed:
      return "passed";
    case TestStatus::kFailed:
      return "failed";
    case TestStatus::kSkipped:
      return "skipped";
    case TestStatus::kCancelled:
      return "cancelled";
    case TestStatus::kExpired:
      return "lost";
    case TestStatus::kFlaky:
      return "flaky";
    case TestStatus::kNotRun:
      break;
  }
  return "not_run";
}

}  // namespace testfarm::coordinator
