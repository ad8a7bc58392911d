#pragma once
// CTest's ordering between the tests of a run, as ctest defines it. Pure: tests in, what each
// waits for out.
//
// - DEPENDS: a test runs after the tests it names, whatever their results; a name that is not
//   in the run is ignored.
// - Fixtures: a test requiring fixture F runs after F's setup tests (FIXTURES_SETUP) and only if
//   they all passed (a skipped setup counts as passed); F's cleanup tests (FIXTURES_CLEANUP) run
//   after F's setup tests and after every test requiring F, whatever their results. A fixture
//   whose setup is not in the run simply has none.
// - A fixture with a setup or cleanup test in the run is state on one machine: its setup, users
//   and cleanup form a group that runs on one worker (groups sharing a test are one group).
// - Disabled tests take no part: a disabled setup is as if it passed, and a disabled test
//   requiring a fixture adds nothing (ctest's rules).
// - A test never waits for itself. A cycle is an error: none of its tests could ever start.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/test_spec.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct TestOrder {
  struct Wait {
    std::size_t on = 0;   // index of the test to wait for
    std::string fixture;  // non-empty: `on` sets up this fixture and must pass
  };
  std::vector<std::vector<Wait>> waits;           // per test
  std::vector<std::optional<std::size_t>> group;  // per test: its fixture group, if any

  bool empty() const;  // nothing waits, nothing is grouped
};

// The order among `tests` (the run's tests, names unique). An error names a cycle.
Result<TestOrder> OrderTests(const std::vector<TestSpec>& tests);

// `selected` (a subset of `all`, in its order) plus, for every fixture a selected test requires,
// the fixture's setup and cleanup tests from `all` — and theirs in turn — as ctest adds them to
// a run that filtered them out. In `all`'s order. `added` (if given) gets the added tests' names.
std::vector<TestSpec> WithFixtureTests(const std::vector<TestSpec>& all,
                                       std::vector<TestSpec> selected,
                                       std::vector<std::string>* added = nullptr);

}  // namespace testfarm::coordinator
