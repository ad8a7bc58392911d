#pragma once
// What the coordinator knows about one test before it runs: a plain suite, or one case of a
// GoogleTest suite.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/ordering.h"
#include "coordinator/output_rules.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

// What the tests of one suite share, set when the suite is planned: one copy per suite, not one
// per case (a binary of a million cases would otherwise hold a million command lines, maps and
// rule lists).
struct SuiteSettings {
  std::vector<std::string> command;        // the suite's argv: command[0] is the executable
  std::map<std::string, std::string> env;  // added to the worker's environment
  std::string cwd;                         // empty: the worker's cwd
  std::map<std::string, std::string> required_labels;  // worker labels it needs, e.g. gpu=1
  std::vector<std::string> data_files;  // shipped with the executable to remote workers
  Ordering ordering;                    // CTest DEPENDS, fixtures, RESOURCE_LOCK, PROCESSORS
  OutputRules output_rules;             // CTest PASS/FAIL/SKIP_REGULAR_EXPRESSION
  friend bool operator==(const SuiteSettings&, const SuiteSettings&) = default;
};
inline const SuiteSettings kNoSuiteSettings{};

struct TestSpec {
  std::string name;        // "suite" or "suite::Suite.Case", as shown to the user
  std::string suite;       // the suite's name
  std::string gtest_case;  // "Suite.Case" for a GoogleTest case; empty for a plain suite
  // For a GoogleTest case that is not disabled: its position among its binary's runnable
  // (non-disabled) cases in listing order, and how many there are (0: not known). gtest's own
  // sharding (GTEST_TOTAL_SHARDS) splits a binary by these positions.
  std::size_t gtest_index = 0;
  std::size_t gtest_runnable = 0;
  Millis timeout{0};  // 0: none
  std::vector<std::string> labels;

  bool will_fail = false;               // CTest WILL_FAIL: passes when it exits non-zero
  std::optional<int> skip_return_code;  // CTest SKIP_RETURN_CODE
  bool run_serial = false;              // CTest RUN_SERIAL: alone on its worker
  unsigned iteration = 1;  // which repeat of the selection this copy of the test is (--repeat)
  // A failed attempt runs again up to this many times; nullopt: the run's --retries.
  std::optional<unsigned> retries;

  std::string skip_reason;   // non-empty: never run, reported as skipped (disabled)
  std::string error;         // non-empty: never run, reported as failed (e.g. listing failed)
  std::string error_output;  // output that explains `error`
  // Non-empty: never run, reported as a test that could not start (ERROR) with this reason
  // (e.g. CTest found no command for it).
  std::string cannot_run;

  // The suite's settings, shared with the other tests of its suite (copies of a TestSpec share
  // them too).
  const SuiteSettings& settings() const {
    return shared_settings ? *shared_settings : kNoSuiteSettings;
  }
  // This test's settings to change: its own copy from here on if they were shared.
  SuiteSettings& EditSettings() {
    if (!shared_settings || shared_settings.use_count() > 1) {
      shared_settings = std::make_shared<SuiteSettings>(settings());
    }
    return *shared_settings;
  }
  // Null: none set (all empty). Read through settings(), change through EditSettings().
  std::shared_ptr<SuiteSettings> shared_settings;

  // It is decided before the run: reported without running.
  bool decided() const { return !skip_reason.empty() || !error.empty() || !cannot_run.empty(); }

  bool gtest() const { return !gtest_case.empty(); }
};

}  // namespace testfarm::coordinator
