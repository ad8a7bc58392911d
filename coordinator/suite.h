#pragma once
// A suite: an executable and how to run and enumerate it. Suites come from the command line, a
// manifest (testfarm.toml) or a CTest build directory; planning turns them into tests and jobs.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/ordering.h"
#include "coordinator/output_rules.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

enum class SuiteKind {
  kAuto,   // a GoogleTest binary if it looks like one (IsGtestBinary), else plain
  kPlain,  // the whole executable is one test; it passes when it exits 0
  kGtest,  // a GoogleTest binary: one test per case (--gtest_list_tests)
};

struct SuiteSpec {
  std::string name;                  // unique display name; tests are "name" or "name::Suite.Case"
  std::vector<std::string> command;  // argv: command[0] is the executable, the rest its args
  SuiteKind kind = SuiteKind::kAuto;
  std::map<std::string, std::string> env;  // added to the worker's environment
  std::string cwd;                         // empty: the coordinator's cwd
  std::optional<Millis> timeout;           // per test; nullopt: the run's --timeout
  std::vector<std::string> labels;
  std::map<std::string, std::string>
      required_labels;                  // worker labels a job needs (e.g. arch=x86_64)
  std::vector<std::string> data_files;  // files the suite needs (shipped to workers later)

  // CTest properties (plain suites). A disabled suite is reported as skipped, never run.
  bool will_fail = false;               // passes when it fails
  std::optional<int> skip_return_code;  // this exit code means "skipped"
  bool run_serial = false;              // runs alone on its worker
  std::optional<unsigned> retries;      // a failed test runs again; nullopt: the run's --retries
  bool disabled = false;
  Ordering ordering;         // DEPENDS, fixtures, RESOURCE_LOCK, PROCESSORS
  OutputRules output_rules;  // PASS/FAIL/SKIP_REGULAR_EXPRESSION
  // Non-empty: why it cannot run (CTest found no command for it). It is reported as a test that
  // could not start, with this reason, never as skipped.
  std::string cannot_run;

  std::string origin;  // where it was declared, for messages: "testfarm.toml:12", "ctest build/"
};

// "gtest", "plain", "auto": the manifest's `kind` values.
const char* SuiteKindName(SuiteKind kind);

}  // namespace testfarm::coordinator
