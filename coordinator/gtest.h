#pragma once
// GoogleTest support: recognising a gtest binary, parsing `--gtest_list_tests` output, and
// parsing the per-case results gtest writes with GTEST_OUTPUT=json:FILE.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// Looks inside the file (no execution) for GoogleTest's marks: its flag names in a static
// binary or its symbols in a dynamic one. False for unreadable files.
bool IsGtestBinary(const std::string& path);

struct GtestCase {
  std::string name;    // "Suite.Case", exactly what --gtest_filter takes
  bool disabled = false;  // DISABLED_ suite or case: reported as skipped, never run
};

// Parses --gtest_list_tests output: suite lines end in '.', case lines are indented, and
// "  # TypeParam = ..." / "  # GetParam() = ..." comments are dropped. Typed and
// value-parameterized names ("Prefix/Suite/0.Case/1") are kept whole. An output that is not a
// listing (no suite line, a case before any suite) is an error naming the offending line.
Result<std::vector<GtestCase>> ParseGtestList(std::string_view output);

struct GtestCaseResult {
  enum class Status { kPassed, kFailed, kSkipped };
  std::string name;  // "Suite.Case"
  Status status = Status::kPassed;
  Millis duration{0};
  std::string message;  // failure messages joined by blank lines; the skip message if any
};

// Parses gtest's JSON report (GTEST_OUTPUT=json). Cases that did not run (status NOTRUN, e.g.
// filtered out) are not listed. A document that is not gtest's JSON is an error.
Result<std::vector<GtestCaseResult>> ParseGtestJson(std::string_view json);

// --gtest_filter value running exactly `cases`: "A.x:B.y".
std::string GtestFilterFor(const std::vector<std::string>& cases);

}  // namespace testfarm::coordinator
