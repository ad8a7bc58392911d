#include "coordinator/plan.h"

#include <fnmatch.h>

#include <algorithm>
#include <filesystem>

#include "coordinator/gtest.h"

namespace testfarm::coordinator {

namespace {

TestSpec FromSuite(const SuiteSpec& suite, Millis default_timeout) {
  TestSpec test;
  test.name = suite.name;
  test.suite = suite.name;
  // Set once here: the suite's cases are copies of this test and share them.
  SuiteSettings& settings = test.EditSettings();
  settings.command = suite.command;
  settings.env = suite.env;
  settings.cwd = suite.cwd;
  settings.required_labels = suite.required_labels;
  settings.data_files = suite.data_files;
  settings.ordering = suite.ordering;
  settings.output_rules = suite.output_rules;
  test.timeout = suite.timeout.value_or(default_timeout);
  test.labels = suite.labels;
  test.will_fail = suite.will_fail;
  test.skip_return_code = suite.skip_return_code;
  test.run_serial = suite.run_serial;
  test.retries = suite.retries;
  if (suite.disabled) {
    test.skip_reason = "disabled";
  } else {
    test.cannot_run = suite.cannot_run;
  }
  return test;
}

std::string ListingFailure(const Listing& listing) {
  if (!listing.state.passed()) return "listing its tests failed: " + listing.state.Describe();
  return {};
}

}  // namespace

std::vector<std::string> ListCommand(const SuiteSpec& suite) {
  std::vector<std::string> argv = suite.command;
  argv.push_back("--gtest_list_tests");
  return argv;
}

std::vector<TestSpec> ExpandSuites(const std::vector<SuiteSpec>& suites,
                                   const std::vector<std::optional<Listing>>& listings,
                                   Millis default_timeout) {
  std::vector<TestSpec> tests;
  for (std::size_t i = 0; i < suites.size(); ++i) {
    TestSpec base = FromSuite(suites[i], default_timeout);
    if (i >= listings.size() || !listings[i] || suites[i].disabled ||
        !suites[i].cannot_run.empty()) {
      tests.push_back(std::move(base));
      continue;
    }
    const Listing& listing = *listings[i];
    std::string failure = ListingFailure(listing);
    Result<std::vector<GtestCase>> cases = !failure.empty()
                                               ? Result<std::vector<GtestCase>>(Error{failure})
                                           : listing.json ? ParseGtestListJson(*listing.json)
                                                          : ParseGtestList(listing.out);
    if (cases && cases->empty()) {
      cases = Error{"it listed no tests (is it a GoogleTest binary?)"};
    }
    if (!cases) {
      base.error = failure.empty() ? "not a GoogleTest listing: " + cases.error().message : failure;
      base.error_output = listing.out + listing.err;
      tests.push_back(std::move(base));
      continue;
    }
    const std::size_t runnable = static_cast<std::size_t>(std::count_if(
        cases->begin(), cases->end(), [](const GtestCase& c) { return !c.disabled; }));
    // Room for the cases at once: a binary of a million cases is not copied as the vector grows
    // (nor left with room for a million more). Later suites still grow it geometrically.
    if (tests.capacity() < tests.size() + cases->size()) {
      tests.reserve(std::max(tests.size() + cases->size(), tests.capacity() * 3 / 2));
    }
    std::size_t index = 0;
    for (const GtestCase& gtest_case : *cases) {
      TestSpec test = base;
      test.name = suites[i].name + "::" + gtest_case.name;
      test.gtest_case = gtest_case.name;
      if (gtest_case.disabled) {
        test.skip_reason = "disabled (DISABLED_)";
      } else {
        test.gtest_index = index++;
        test.gtest_runnable = runnable;
      }
      tests.push_back(std::move(test));
    }
  }
  return tests;
}

bool GlobMatch(const std::string& pattern, const std::string& text) {
  return ::fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
}

Result<std::vector<TestSpec>> Select(std::vector<TestSpec> tests, const Selection& selection) {
  for (const std::string& pattern : selection.filters) {
    bool any = std::any_of(tests.begin(), tests.end(),
                           [&](const TestSpec& t) { return GlobMatch(pattern, t.name); });
    if (!any) return Error{"--filter '" + pattern + "' matches no test"};
  }
  for (const std::string& label : selection.labels) {
    bool any = std::any_of(tests.begin(), tests.end(), [&](const TestSpec& t) {
      return std::find(t.labels.begin(), t.labels.end(), label) != t.labels.end();
    });
    if (!any) return Error{"--label '" + label + "' matches no test"};
  }
  auto keep = [&](const TestSpec& t) {
    auto matches = [&](const std::string& p) { return GlobMatch(p, t.name); };
    if (!selection.filters.empty() &&
        std::none_of(selection.filters.begin(), selection.filters.end(), matches)) {
      return false;
    }
    if (std::any_of(selection.excludes.begin(), selection.excludes.end(), matches)) return false;
    if (!selection.labels.empty() &&
        std::none_of(selection.labels.begin(), selection.labels.end(), [&](const auto& l) {
          return std::find(t.labels.begin(), t.labels.end(), l) != t.labels.end();
        })) {
      return false;
    }
    return true;
  };
  // Filtered in place: a second vector of a million tests would double the planner's peak.
  std::erase_if(tests, [&](const TestSpec& t) { return !keep(t); });
  if (tests.empty()) return Error{"the selection leaves no test to run"};
  return tests;
}

namespace {

// FNV-1a, 64 bits: stable across machines and releases, unlike std::hash.
uint64_t StableHash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 1099511628211ull;
  }
  return hash;
}

// splitmix64: a small, well-mixed generator whose sequence is ours to keep.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::optional<unsigned> ParseCount(std::string_view text) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return static_cast<unsigned>(std::stoul(std::string(text)));
}

}  // namespace

Result<Partition> ParsePartition(const std::string& text) {
  const Error error{"--partition: expected hash:M/N or count:M/N with 1 <= M <= N, got '" + text +
                    "'"};
  std::size_t colon = text.find(':');
  std::size_t slash = text.find('/');
  if (colon == std::string::npos || slash == std::string::npos || slash < colon) return error;
  Partition partition;
  std::string kind = text.substr(0, colon);
  if (kind == "hash") {
    partition.kind = Partition::Kind::kHash;
  } else if (kind == "count") {
    partition.kind = Partition::Kind::kCount;
  } else {
    return error;
  }
  auto index = ParseCount(std::string_view(text).substr(colon + 1, slash - colon - 1));
  auto count = ParseCount(std::string_view(text).substr(slash + 1));
  if (!index || !count || *index == 0 || *index > *count) return error;
  partition.index = *index;
  partition.count = *count;
  return partition;
}

std::vector<TestSpec> TakePartition(std::vector<TestSpec> tests, const Partition& partition) {
  // Kept in place: a second vector of a million tests would double the planner's peak.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < tests.size(); ++i) {
    uint64_t key = partition.kind == Partition::Kind::kHash ? StableHash(tests[i].name) : i;
    if (key % partition.count != partition.index - 1) continue;
    if (kept != i) tests[kept] = std::move(tests[i]);
    ++kept;
  }
  tests.erase(tests.begin() + static_cast<std::ptrdiff_t>(kept), tests.end());
  return tests;
}

void Shuffle(std::vector<TestSpec>* tests, uint64_t seed) {
  uint64_t state = seed;
  for (std::size_t i = tests->size(); i > 1; --i) {
    std::size_t j = static_cast<std::size_t>(NextRandom(&state) % i);
    std::swap((*tests)[i - 1], (*tests)[j]);
  }
}

}  // namespace testfarm::coordinator
