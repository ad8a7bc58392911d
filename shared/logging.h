#pragma once
// One place that configures spdlog: logs go to stderr, level from --log-level or TESTFARM_LOG.
#include <string>

namespace testfarm {

// Returns false if `level` is not a spdlog level name.
bool InitLogging(const std::string& level);

}  // namespace testfarm
