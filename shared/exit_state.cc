#include "shared/exit_state.h"

#include <string.h>

#include <array>
#include <utility>

namespace testfarm {

namespace {
constexpr std::array<std::pair<ExitState::Kind, const char*>, 6> kKindNames{{
    {ExitState::Kind::kExited, "exited"},
    {ExitState::Kind::kSignaled, "signaled"},
    {ExitState::Kind::kTimedOut, "timed_out"},
    {ExitState::Kind::kSpawnFailed, "spawn_failed"},
    {ExitState::Kind::kLeaked, "leaked"},
    {ExitState::Kind::kCancelled, "cancelled"},
}};
}  // namespace

const char* KindName(ExitState::Kind kind) {
  for (const auto& [k, name] : kKindNames)
    if (k == kind) return name;
  return "unknown";
}

bool KindFromName(const std::string& name, ExitState::Kind* out) {
  for (const auto& [k, n] : kKindNames) {
    if (name == n) {
      *out = k;
      return true;
    }
  }
  return false;
}

std::string SignalName(int signal) {
  const char* abbrev = ::sigabbrev_np(signal);
  if (abbrev == nullptr) return "signal " + std::to_string(signal);
  return std::string("SIG") + abbrev;
}

std::string ExitState::Describe() const {
  switch (kind_) {
    case Kind::kExited:
      return "exit " + std::to_string(value_);
    case Kind::kSignaled:
      return SignalName(value_) + (core_dumped_ ? " (core dumped)" : "");
    case Kind::kTimedOut:
      return detail_.empty() ? "timed out" : "timed out, " + detail_;
    case Kind::kSpawnFailed:
      return "failed to start: " + detail_;
    case Kind::kLeaked:
      return "exit " + std::to_string(value_) + ", leaked: " + detail_;
    case Kind::kCancelled:
      return detail_.empty() ? "cancelled" : "cancelled, " + detail_;
  }
  return "unknown";
}

}  // namespace testfarm
