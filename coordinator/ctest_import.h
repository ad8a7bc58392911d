#pragma once
// CTest import: the tests a CMake build registered, read from `ctest --show-only=json-v1`.
// Each CTest test becomes a plain suite whose name is the CTest name (so tests registered by
// gtest_discover_tests come through as the per-case tests they are), honouring
// WORKING_DIRECTORY, ENVIRONMENT, TIMEOUT, WILL_FAIL, DISABLED, SKIP_RETURN_CODE, LABELS,
// RUN_SERIAL, PASS/FAIL/SKIP_REGULAR_EXPRESSION (SuiteSpec::output_rules), and DEPENDS,
// FIXTURES_SETUP/REQUIRED/CLEANUP, RESOURCE_LOCK and PROCESSORS (SuiteSpec::ordering; what they
// mean together is in test_order.h).
//
// A test without a command (CTest could not find its executable) cannot run: it comes through
// with SuiteSpec::cannot_run saying so, and fails — only DISABLED makes a test skipped. A
// property that changes nothing about how a test runs (COST, ATTACHED_FILES,
// ATTACHED_FILES_ON_FAIL, MEASUREMENT) is ignored; any other that is not honoured
// (RESOURCE_GROUPS, REQUIRED_FILES, ...) is named in one warning per property, with its tests.
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
