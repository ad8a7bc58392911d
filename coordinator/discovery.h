#pragma once
// Discovery: where the tests come from, before anything runs. Executables named on the command
// line, a manifest (testfarm.toml) and a CTest build directory become suites; GoogleTest suites
// are listed (one test per case); the user's selection, partition and fixture closure apply.
//
// The programs it runs — a GoogleTest binary's listing, `ctest --show-only` — go through a
// ToolRunner, so discovery is unit-tested with a fake one; `testfarm` passes one that runs them
// on a local subprocess pool.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "coordinator/plan.h"
#include "coordinator/suite.h"
#include "coordinator/test_spec.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// What to run, as the user gave it (`run` and `list` share these flags; errors name them).
struct SourceOptions {
  std::vector<std::string> executables;
  std::string manifest;  // empty: ./testfarm.toml if present and nothing else was given
  std::string ctest_dir;
  std::vector<std::string> filters;
  std::vector<std::string> excludes;
  std::vector<std::string> labels;
  std::string timeout = "10m";
  unsigned jobs = 0;      // 0: the default slot count
  std::string partition;  // "hash:M/N" or "count:M/N"; empty: all of the selection
};

// A helper program discovery runs to completion.
struct ToolRun {
  std::vector<std::string> argv;  // argv[0]: a path
  std::map<std::string, std::string> env;
  std::string cwd;
  Millis timeout{60000};
  Millis kill_grace{1000};
  // Non-empty: the runner appends this followed by a fresh file's path to argv and hands back
  // what the program wrote there as Listing::json (nullopt when it wrote nothing).
  std::string output_arg;
};
// Runs `runs` (up to `parallel` at once); one result per run, in order.
using ToolRunner =
    std::function<std::vector<Listing>(std::vector<ToolRun> runs, unsigned parallel)>;

// What discovery says besides the tests: warnings (a manifest key it does not know, a CTest
// property it ignores) and notes (a fixture's setup added to the selection).
struct DiscoveryNotes {
  std::vector<std::string> warnings;
  std::vector<std::string> notes;
};

// A path the user named must be a readable regular file; whether it can be executed is the
// test's business (a test that cannot start is reported as a failed test).
std::optional<std::string> CheckExecutable(const std::string& path);

// The suites of `options` (executables, manifest, CTest), each under a name of its own.
// `parallel`: how many helper programs to run at once.
Result<std::vector<SuiteSpec>> GatherSuites(const SourceOptions& options, const ToolRunner& run,
                                            unsigned parallel, DiscoveryNotes* notes);

// The tests to run: suites gathered, GoogleTest suites listed, the selection applied, the
// partition taken, fixtures' setups and cleanups added, their order checked (no cycle).
Result<std::vector<TestSpec>> DiscoverTests(const SourceOptions& options, const ToolRunner& run,
                                            unsigned parallel, DiscoveryNotes* notes);

}  // namespace testfarm::coordinator
