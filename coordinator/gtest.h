#pragma once
// GoogleTest support: recognising a gtest binary, parsing `--gtest_list_tests` output, and
// parsing the per-case results gtest writes with GTEST_OUTPUT=json:FILE.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// Looks inside the file (no execution) for GoogleTest's marks: its flag names in a static
// binary or its symbols in a dynamic one. Only ELF files qualify (a script that mentions
// --gtest_filter is not a gtest binary). The file is read in chunks of kGtestScanChunkBytes,
// at most kGtestScanMaxBytes of it. False for unreadable files and anything not a regular file.
bool IsGtestBinary(const std::string& path);
inline constexpr std::size_t kGtestScanChunkBytes = std::size_t{1} << 20;
inline constexpr std::size_t kGtestScanMaxBytes = std::size_t{256} << 20;

struct GtestCase {
  std::string name;       // "Suite.Case", exactly what --gtest_filter takes
  bool disabled = false;  // DISABLED_ suite or case: reported as skipped, never run
};

// Parses --gtest_list_tests output: suite lines end in '.', case lines are indented, and
// "  # TypeParam = ..." / "  # GetParam() = ..." comments are dropped. Typed and
// value-parameterized names ("Prefix/Suite/0.Case/1") are kept whole. Lines before the first
// suite line that are not listing lines (gtest_main's "Running main() from ...") are skipped,
// and blank lines anywhere. A binary with no cases lists nothing: an output of only gtest_main's
// line (or nothing) is an empty listing. Anything else that is not a listing (a case before any
// suite, a suite without cases, a stray line within the listing, other output and no suite at
// all) is an error naming the offending line.
Result<std::vector<GtestCase>> ParseGtestList(std::string_view output);

// Parses the listing gtest writes with --gtest_list_tests --gtest_output=json:FILE
// ({"testsuites": [{"name": S, "testsuite": [{"name": C, ...}]}]}), which, unlike the console
// listing, has no size limit of ours: a binary of a million cases lists through it. Read as a
// stream of events; only the names are kept. Disabled cases are marked as ParseGtestList does.
Result<std::vector<GtestCase>> ParseGtestListJson(std::string_view json);

struct GtestCaseResult {
  enum class Status { kPassed, kFailed, kSkipped };
  std::string name;  // "Suite.Case"
  Status status = Status::kPassed;
  Millis duration{0};
  std::string message;  // failure messages joined by blank lines; the skip message if any
};

// Parses gtest's JSON report (GTEST_OUTPUT=json). Cases that did not run (status NOTRUN, e.g.
// filtered out or disabled) are not listed. A document that is not gtest's JSON is an error.
// gtest 1.12 does not put GTEST_SKIP()'s message in the JSON; pass the binary's stdout as
// `console_output` to take skip messages from it ("file:line: Skipped\n<message>" between the
// case's "[ RUN      ]" and "[  SKIPPED ]" lines). A failure outside any case (a global
// Environment's SetUp/TearDown) is listed as "NonTestSuiteFailure", the suite name gtest gives
// it; having no '.', it never collides with a case.
Result<std::vector<GtestCaseResult>> ParseGtestJson(std::string_view json,
                                                    std::string_view console_output = {});

// --gtest_filter value running exactly `cases`: "A.x:B.y".
std::string GtestFilterFor(const std::vector<std::string>& cases);

}  // namespace testfarm::coordinator
