#pragma once
// What the coordinator knows about one test before it runs: a plain suite, or one case of a
// GoogleTest suite.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/ordering.h"
#include "coordinator/output_rules.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

struct TestSpec {
  std::string name;        // "suite" or "suite::Suite.Case", as shown to the user
  std::string suite;       // the suite's name
  std::string gtest_case;  // "Suite.Case" for a GoogleTest case; empty for a plain suite
  // For a GoogleTest case that is not disabled: its position among its binary's runnable
  // (non-disabled) cases in listing order, and how many there are (0: not known). gtest's own
  // sharding (GTEST_TOTAL_SHARDS) splits a binary by these positions.
  std::size_t gtest_index = 0;
  std::size_t gtest_runnable = 0;
  std::vector<std::string> command;        // the suite's argv: command[0] is the executable
  std::map<std::string, std::string> env;  // added to the worker's environment
  std::string cwd;                         // empty: the worker's cwd
  Millis timeout{0};                       // 0: none
  std::vector<std::string> labels;
  std::map<std::string, std::string> required_labels;  // worker labels it needs, e.g. gpu=1
  std::vector<std::string> data_files;  // shipped with the executable to remote workers

  bool will_fail = false;               // CTest WILL_FAIL: passes when it exits non-zero
  std::optional<int> skip_return_code;  // CTest SKIP_RETURN_CODE
  bool run_serial = false;              // CTest RUN_SERIAL: alone on its worker
  unsigned iteration = 1;  // which repeat of the selection this copy of the test is (--repeat)
  // A failed attempt runs again up to this many times; nullopt: the run's --retries.
  std::optional<unsigned> retries;
  Ordering ordering;         // CTest DEPENDS, fixtures, RESOURCE_LOCK, PROCESSORS
  OutputRules output_rules;  // CTest PASS/FAIL/SKIP_REGULAR_EXPRESSION

  std::string skip_reason;   // non-empty: never run, reported as skipped (disabled)
  std::string error;         // non-empty: never run, reported as failed (e.g. listing failed)
  std::string error_output;  // output that explains `error`
  // Non-empty: never run, reported as a test that could not start (ERROR) with this reason
  // (e.g. CTest found no command for it).
  std::string cannot_run;

  // It is decided before the run: reported without running.
  bool decided() const { return !skip_reason.empty() || !error.empty() || !cannot_run.empty(); }

  bool gtest() const { return !gtest_case.empty(); }
};

}  // namespace testfarm::coordinator
