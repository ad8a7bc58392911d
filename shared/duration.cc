#include "shared/duration.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace testfarm {

std::optional<Millis> ParseDuration(std::string_view text) {
  if (text.empty() || text.size() > 32) return std::nullopt;
  std::string s(text);
  char* end = nullptr;
  errno = 0;
  double number = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || errno != 0 || !std::isfinite(number) || number < 0) return std::nullopt;
  if (s[0] == '+' || s[0] == '-' || s[0] == ' ') return std::nullopt;
  std::string_view unit(end);
  double scale;
  if (unit.empty() || unit == "s") {
    scale = 1000;
  } else if (unit == "ms") {
    scale = 1;
  } else if (unit == "m" || unit == "min") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else if (unit == "d") {
    scale = 86'400'000;
  } else {
    return std::nullopt;
  }
  double ms = number * scale;
  if (ms > 1e15) return std::nullopt;
  // To the nearest millisecond, but a positive duration never becomes 0, which means "none"
  // to a timeout: anything under a millisecond is one.
  long long rounded = std::llround(ms);
  if (rounded == 0 && ms > 0) rounded = 1;
  return Millis(rounded);
}

std::string FormatDuration(Millis d) {
  long long ms = d.count();
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", ms);
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.2fs", static_cast<double>(ms) / 1000.0);
  } else {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", ms / 60'000, (ms / 1000) % 60);
  }
  return buf;
}

}  // namespace testfarm
