#pragma once
// How a test is ordered against the others of a run and what it occupies while it runs: CTest's
// DEPENDS, FIXTURES_SETUP / FIXTURES_REQUIRED / FIXTURES_CLEANUP, RESOURCE_LOCK and PROCESSORS
// (see coordinator/test_order.h for what they mean together).
#include <string>
#include <vector>

namespace testfarm::coordinator {

// The most times a failed test may run again (--retries, a manifest's `retries`).
inline constexpr unsigned kMaxRetries = 20;

struct Ordering {
  std::vector<std::string> depends;            // tests it runs after, if they are in the run
  std::vector<std::string> fixtures_setup;     // fixtures it sets up
  std::vector<std::string> fixtures_required;  // fixtures whose setup must pass before it runs
  std::vector<std::string> fixtures_cleanup;   // fixtures it cleans up after their users
  std::vector<std::string> resource_locks;     // tests sharing a name never run at once
  unsigned processors = 1;                     // slots it occupies on its worker
  friend bool operator==(const Ordering&, const Ordering&) = default;
};

}  // namespace testfarm::coordinator
