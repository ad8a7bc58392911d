#pragma once
// Durations as users write them: "30" (seconds), "500ms", "1.5s", "2m", "1h", "30d".
#include <optional>
#include <string>
#include <string_view>

#include "shared/clock.h"

namespace testfarm {

std::optional<Millis> ParseDuration(std::string_view text);
// "12ms", "1.53s", "2m05s".
std::string FormatDuration(Millis d);

}  // namespace testfarm
