#pragma once
// Runs a handful of commands to completion on a local pool: what the CLI needs before a run
// starts (listing GoogleTest suites, asking CTest for its tests). Same launching, capture and
// timeouts as tests get; one poll loop; nothing sleeps.
#include <vector>

#include "worker/subprocess_pool.h"

namespace testfarm::worker {

// Results in the order of `specs`.
std::vector<FinishedJob> RunToCompletion(std::vector<LaunchSpec> specs, unsigned slots,
                                         std::size_t output_cap = std::size_t{1} << 20);

}  // namespace testfarm::worker
