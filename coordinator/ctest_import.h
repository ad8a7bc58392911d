#pragma once
// CTest import: the tests a CMake build registered, read from `ctest --show-only=json-v1`.
// Each CTest test becomes a plain suite whose name is the CTest name (so tests registered by
// gtest_discover_tests come through as the per-case tests they are), honouring
// WORKING_DIRECTORY, ENVIRONMENT, TIMEOUT, WILL_FAIL, DISABLED, SKIP_RETURN_CODE, LABELS and
// RUN_SERIAL. Other properties are ignored.
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/suite.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// Parses the JSON text. `origin` is used in messages and SuiteSpec::origin. `warnings` (if
// given) gets one line per property some tests set that testfarm does not honour.
Result<std::vector<SuiteSpec>> ParseCtestJson(std::string_view json, const std::string& origin,
                                              std::vector<std::string>* warnings = nullptr);

// The argv that asks CTest for that JSON: {"ctest", "--test-dir", build_dir,
// "--show-only=json-v1"}.
std::vector<std::string> CtestListCommand(const std::string& build_dir);

}  // namespace testfarm::coordinator
