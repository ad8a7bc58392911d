#pragma once
// Planning: suites become tests (a GoogleTest suite one per case, from its listing), and the
// user's selection (--filter, --exclude, --label) picks which run. Pure: the listings are run by
// the caller and handed in.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/suite.h"
#include "coordinator/test_spec.h"
#include "shared/exit_state.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// How `command --gtest_list_tests` ended.
struct Listing {
  ExitState state = ExitState::Exited(0);
  std::string out;
  std::string err;
  // The listing as JSON (kListingJsonArg's file), when it was asked for and the command wrote
  // it: preferred to `out`. Asked for only when the printed listing does not read as one (gtest
  // >= 1.10 writes it; an older one only prints the listing).
  std::optional<std::string> json;
};

// The argv that lists a gtest suite's cases.
std::vector<std::string> ListCommand(const SuiteSpec& suite);
// Followed by a file's path, the argument that has gtest also write its listing there as JSON.
inline constexpr const char* kListingJsonArg = "--gtest_output=json:";

// `listings[i]` is set for the suites to expand as GoogleTest suites (kind resolved by the
// caller), nullopt for plain suites. A listing that crashed, hung or printed garbage yields one
// test named after the suite carrying the error and the output, so the run reports it and goes
// on. `default_timeout` applies where a suite has none.
std::vector<TestSpec> ExpandSuites(const std::vector<SuiteSpec>& suites,
                                   const std::vector<std::optional<Listing>>& listings,
                                   Millis default_timeout);

struct Selection {
  std::vector<std::string> filters;   // globs over full names; a test must match one (if any)
  std::vector<std::string> excludes;  // globs; a test matching one is dropped
  std::vector<std::string> labels;    // a test must carry one of them (if any)
};

// Shell-style glob: '*' matches any run of characters (including '/' and ':'), '?' one,
// [...] a set.
bool GlobMatch(const std::string& pattern, const std::string& text);

// The tests the selection picks, in order. An error if a --filter pattern or --label matches
// no test at all, or if nothing is left: a selection that selects nothing is a mistake, not a
// green run.
Result<std::vector<TestSpec>> Select(std::vector<TestSpec> tests, const Selection& selection);

// --partition: part `index` (1-based) of `count` of a selection.
struct Partition {
  enum class Kind { kHash, kCount };
  Kind kind = Kind::kHash;
  unsigned index = 1;
  unsigned count = 1;
};
// "hash:M/N" or "count:M/N" with 1 <= M <= N.
Result<Partition> ParsePartition(const std::string& text);
// The tests of one part: by a stable hash of each test's name (a test stays in its part as
// others come and go), or every Nth test in the given order. The parts of 1..N are disjoint and
// together hold every test. A part may be empty.
std::vector<TestSpec> TakePartition(std::vector<TestSpec> tests, const Partition& partition);

// The order tests start in, shuffled reproducibly: the same seed and tests give the same order
// on every machine (our own generator and Fisher-Yates, not std::shuffle's unspecified one).
void Shuffle(std::vector<TestSpec>* tests, uint64_t seed);

}  // namespace testfarm::coordinator
