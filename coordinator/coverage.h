#pragma once
// The coordinator's side of --coverage after the tests: which binaries carry coverage mapping,
// merging the workers' indexed profiles into one, exporting it with llvm-cov (JSON in the
// llvm.coverage.json.export format, lcov, or HTML) and the per-file summary. The tools run
// through an injected runner, so this layer decides and the CLI does.
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "coordinator/report.h"
#include "coordinator/test_spec.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct CoverageObjects {
  std::vector<std::string> objects;         // instrumented executables and build-tree libraries
  std::vector<std::string> uninstrumented;  // executables without coverage mapping (warned)
};

// The distinct executables of `tests` (and the libraries they load from the build tree) that
// were built with -fcoverage-mapping. System commands (/bin/sh) are neither.
CoverageObjects FindCoverageObjects(const std::vector<TestSpec>& tests);

struct CommandResult {
  bool ok = false;   // ran and exited 0
  std::string what;  // how it ended, when not ok ("exit 1", "SIGSEGV", ...)
  std::string stderr_text;
};
// Runs argv to completion; its stdout goes to `stdout_file` (empty: discarded).
using CommandRunner = std::function<CommandResult(const std::vector<std::string>& argv,
                                                  const std::string& stdout_file)>;

struct CoverageExport {
  std::string llvm_profdata;
  std::string llvm_cov;
  std::string format = "json";     // json | lcov | html
  std::filesystem::path output;    // a file (json, lcov) or a directory (html)
  bool summary = false;            // also return the per-file summary table
  std::filesystem::path work_dir;  // for the merged profile
};

struct CoverageOutcome {
  std::vector<std::string> warnings;  // llvm-cov's own warnings, surfaced (e.g. stale binaries)
  std::string summary;                // the table, when asked for
};

// Merges `collected.profiles` and writes the export. Errors name the tool and what it said.
Result<CoverageOutcome> ExportCoverage(const CoverageSummary& collected,
                                       const CoverageObjects& objects, const CoverageExport& how,
                                       const CommandRunner& run);

// A per-file table (lines, regions, branches: covered/total and percent) and the totals, from
// an llvm-cov export JSON document.
Result<std::string> FormatCoverageSummary(const std::string& export_json);

}  // namespace testfarm::coordinator
