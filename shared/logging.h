#pragma once
// One place that configures spdlog: logs go to stderr, level from --log-level or TESTFARM_LOG.
#include <string>

namespace testfarm {

// Returns false if `level` is not a spdlog level name. At warn and above a line reads like the
// rest of testfarm's messages ("testfarm: warning: ..."); a daemon (`worker`) or a more verbose
// level gets timestamps and thread ids, for logs read later.
bool InitLogging(const std::string& level, bool daemon = false);

}  // namespace testfarm
