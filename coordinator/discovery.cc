#include "coordinator/discovery.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <unordered_map>
#include <unordered_set>

#include "coordinator/ctest_import.h"
#include "coordinator/gtest.h"
#include "coordinator/manifest.h"
#include "coordinator/test_order.h"
#include "shared/duration.h"
#include "shared/errno_text.h"
#include "shared/llvm_tools.h"

namespace testfarm::coordinator {

namespace {

namespace fs = std::filesystem;

Result<std::vector<SuiteSpec>> ImportCtest(const std::string& dir, const ToolRunner& run,
                                           unsigned parallel, DiscoveryNotes* notes) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    return Error{"--ctest: '" + dir + "': " + ErrnoText(errno)};
  }
  if (!S_ISDIR(st.st_mode)) return Error{"--ctest: '" + dir + "' is not a directory"};
  fs::path root(dir);
  if (::access((root / "CTestTestfile.cmake").c_str(), F_OK) != 0) {
    if (::access((root / "CMakeCache.txt").c_str(), F_OK) != 0) {
      return Error{"--ctest: '" + dir + "' is not a CMake build directory (no CMakeCache.txt)"};
    }
    return Error{"--ctest: '" + dir +
                 "' has no tests registered (no CTestTestfile.cmake: does the project call "
                 "enable_testing()?)"};
  }
  std::string ctest = FindOnPath("ctest");
  if (ctest.empty()) return Error{"--ctest: 'ctest' is not on PATH (it comes with cmake)"};
  ToolRun list;
  list.argv = CtestListCommand(dir);
  list.argv[0] = ctest;
  std::vector<Listing> done = run({list}, parallel);
  const Listing& listed = done.at(0);
  if (!listed.state.passed()) {
    return Error{"--ctest: '" + dir + "': ctest failed (" + listed.state.Describe() +
                 "): " + listed.err};
  }
  return ParseCtestJson(listed.out, "ctest " + dir, &notes->warnings);
}

// A manifest suite's working directory and data files must be there before anything runs, on
// this machine as on a fleet (where they are shipped from here).
std::optional<std::string> CheckSuiteFiles(const SuiteSpec& suite) {
  struct stat st {};
  if (!suite.cwd.empty()) {
    if (::stat(suite.cwd.c_str(), &st) != 0) {
      return suite.origin + ": cwd '" + suite.cwd + "': " + ErrnoText(errno);
    }
    if (!S_ISDIR(st.st_mode)) return suite.origin + ": cwd '" + suite.cwd + "' is not a directory";
  }
  for (const std::string& data : suite.data_files) {
    fs::path path = fs::path(suite.cwd) / data;  // absolute data paths ignore the cwd
    if (::stat(path.c_str(), &st) != 0) {
      return suite.origin + ": data '" + path.string() + "': " + ErrnoText(errno);
    }
  }
  return std::nullopt;
}

// Two suites of one name would make tests of one name, counted once in one report and twice in
// another. A name given again (the same executable twice, or a manifest suite named like a CTest
// test) becomes "NAME#2", "NAME#3": every suite runs, under a name of its own everywhere. The
// names taken and the next number to try per name are kept, so a thousand suites of one
// executable cost a thousand lookups, not a billion comparisons.
class SuiteList {
 public:
  explicit SuiteList(std::vector<SuiteSpec>* suites) : suites_(suites) {}
  void Add(SuiteSpec suite) {
    if (taken_.count(suite.name) != 0) {
      const std::string base = suite.name;
      unsigned& n = next_number_.try_emplace(base, 2).first->second;
      while (taken_.count(base + "#" + std::to_string(n)) != 0) ++n;
      suite.name = base + "#" + std::to_string(n++);
    }
    taken_.insert(suite.name);
    suites_->push_back(std::move(suite));
  }

 private:
  std::vector<SuiteSpec>* suites_;
  std::unordered_set<std::string> taken_;
  std::unordered_map<std::string, unsigned> next_number_;
};

}  // namespace

std::optional<std::string> CheckExecutable(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return "cannot run '" + path + "': " + ErrnoText(errno);
  }
  if (S_ISDIR(st.st_mode)) return "cannot run '" + path + "': it is a directory";
  if (!S_ISREG(st.st_mode)) return "cannot run '" + path + "': not a regular file";
  if (::access(path.c_str(), R_OK) != 0) {
    return "cannot run '" + path + "': " + ErrnoText(errno);
  }
  return std::nullopt;
}

Result<std::vector<SuiteSpec>> GatherSuites(const SourceOptions& options, const ToolRunner& run,
                                            unsigned parallel, DiscoveryNotes* notes) {
  std::vector<SuiteSpec> suites;
  SuiteList list(&suites);
  for (const std::string& path : options.executables) {
    if (auto problem = CheckExecutable(path)) return Error{*problem};
    std::error_code ec;
    fs::path absolute = fs::absolute(path, ec);
    if (ec) return Error{"cannot run '" + path + "': " + ec.message()};
    SuiteSpec suite;
    suite.name = path;
    suite.command = {absolute.lexically_normal().string()};
    suite.origin = "command line";
    list.Add(std::move(suite));
  }
  std::string manifest = options.manifest;
  if (manifest.empty() && options.executables.empty() && options.ctest_dir.empty() &&
      ::access("testfarm.toml", F_OK) == 0) {
    manifest = "testfarm.toml";
  }
  if (!manifest.empty()) {
    auto declared = ParseManifestFile(manifest, &notes->warnings);
    if (!declared) return declared.error();
    for (SuiteSpec& suite : *declared) {
      if (!suite.disabled) {
        if (auto problem = CheckExecutable(suite.command.at(0))) {
          return Error{suite.origin + ": " + *problem};
        }
        if (auto problem = CheckSuiteFiles(suite)) return Error{*problem};
      }
      list.Add(std::move(suite));
    }
  }
  if (!options.ctest_dir.empty()) {
    auto imported = ImportCtest(options.ctest_dir, run, parallel, notes);
    if (!imported) return imported.error();
    for (SuiteSpec& suite : *imported) list.Add(std::move(suite));
  }
  if (suites.empty()) {
    return Error{
        "nothing to run: give test executables, --manifest FILE or --ctest DIR "
        "(or run where a testfarm.toml is)"};
  }
  return suites;
}

namespace {

// The run that lists a GoogleTest suite's cases: printed, or (`json`) also written as JSON to a
// file, whose size has no cap of ours.
ToolRun ListRun(const SuiteSpec& suite, bool json) {
  ToolRun list;
  list.argv = ListCommand(suite);
  if (json) list.output_arg = kListingJsonArg;
  list.env = suite.env;
  // An instrumented binary would otherwise leave default.profraw in its working directory.
  list.env["LLVM_PROFILE_FILE"] = "/dev/null";
  list.cwd = suite.cwd;
  return list;
}

}  // namespace

Result<std::vector<TestSpec>> DiscoverTests(const SourceOptions& options, const ToolRunner& run,
                                            unsigned parallel, DiscoveryNotes* notes) {
  auto timeout = ParseDuration(options.timeout);
  if (!timeout) {
    return Error{"--timeout: not a duration: '" + options.timeout + "' (try 30s, 500ms, 2m)"};
  }
  std::optional<Partition> partition;
  if (!options.partition.empty()) {
    auto parsed = ParsePartition(options.partition);
    if (!parsed) return parsed.error();
    partition = *parsed;
  }
  auto suites = GatherSuites(options, run, parallel, notes);
  if (!suites) return suites.error();

  // GoogleTest suites are listed, all at once.
  std::vector<std::optional<Listing>> listings(suites->size());
  std::vector<ToolRun> lists;
  std::vector<std::size_t> listed;
  std::map<std::string, bool> is_gtest;  // by executable path
  for (std::size_t i = 0; i < suites->size(); ++i) {
    SuiteSpec& suite = (*suites)[i];
    if (suite.disabled || suite.command.empty()) continue;
    if (suite.kind == SuiteKind::kAuto) {
      // Many suites may run one binary (with different arguments): look inside it once.
      auto known = is_gtest.find(suite.command[0]);
      if (known == is_gtest.end()) {
        known = is_gtest.emplace(suite.command[0], IsGtestBinary(suite.command[0])).first;
      }
      suite.kind = known->second ? SuiteKind::kGtest : SuiteKind::kPlain;
    }
    if (suite.kind != SuiteKind::kGtest) continue;
    lists.push_back(ListRun(suite, false));
    listed.push_back(i);
  }
  if (!lists.empty()) {
    std::vector<Listing> done = run(std::move(lists), parallel);
    // A printed listing that does not read as one (a parameter whose printed value spans lines)
    // is asked for again as JSON, which gtest (1.10 on) writes unambiguously but slower: 1.9 s
    // against 0.75 s for 200,000 cases.
    std::vector<ToolRun> again;
    std::vector<std::size_t> again_of;
    for (std::size_t k = 0; k < listed.size() && k < done.size(); ++k) {
      const Listing& listing = done[k];
      if (listing.state.passed()) {
        auto cases = ParseGtestList(listing.out);
        if (!cases || cases->empty()) {
          again.push_back(ListRun((*suites)[listed[k]], true));
          again_of.push_back(k);
        }
      }
    }
    if (!again.empty()) {
      std::vector<Listing> redone = run(std::move(again), parallel);
      for (std::size_t j = 0; j < again_of.size() && j < redone.size(); ++j) {
        if (redone[j].json) done[again_of[j]] = std::move(redone[j]);
      }
    }
    for (std::size_t k = 0; k < listed.size() && k < done.size(); ++k) {
      listings[listed[k]] = std::move(done[k]);
    }
  }
  auto tests = ExpandSuites(*suites, listings, *timeout);
  // A fixture's setup and cleanup come back from the whole list: kept only when some test
  // requires a fixture (a million GoogleTest cases are not copied for nothing).
  const bool fixtures = std::any_of(tests.begin(), tests.end(), [](const TestSpec& test) {
    return !test.settings().ordering.fixtures_required.empty();
  });
  std::vector<TestSpec> all;
  if (fixtures) all = tests;
  auto selected =
      Select(std::move(tests), Selection{options.filters, options.excludes, options.labels});
  if (!selected) return selected;
  if (partition) *selected = TakePartition(std::move(*selected), *partition);
  // Like ctest: a selected test requiring a fixture brings the fixture's setup and cleanup.
  std::vector<std::string> added;
  if (fixtures) *selected = WithFixtureTests(all, std::move(*selected), &added);
  for (const std::string& name : added) {
    notes->notes.push_back(name + ": added to the run as a setup or cleanup of a selected test's " +
                           "fixture");
  }
  if (auto order = OrderTests(*selected); !order) return order.error();
  return selected;
}

}  // namespace testfarm::coordinator
