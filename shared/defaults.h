#pragma once
// Defaults more than one layer uses, each defined once.
#include "shared/clock.h"

namespace testfarm {

// SIGTERM to a test's group, then this long before SIGKILL (`--kill-grace`).
inline constexpr Millis kDefaultKillGrace{2000};
// After a test's process exits, how long its pipes may stay open (held by a leftover child)
// before the group is killed and the test reported as leaking.
inline constexpr Millis kDefaultLeakGrace{500};

}  // namespace testfarm
