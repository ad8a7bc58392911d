#pragma once
// How a test process ended, as a value. A signal is never folded into an exit code.
#include <string>

namespace testfarm {

class ExitState {
 public:
  enum class Kind { kExited, kSignaled, kTimedOut, kSpawnFailed, kLeaked, kCancelled };

  static ExitState Exited(int code) { return {Kind::kExited, code, false, {}}; }
  static ExitState Signaled(int signal, bool core_dumped) {
    return {Kind::kSignaled, signal, core_dumped, {}};
  }
  // `detail` says how the process group was ended (e.g. "SIGTERM", "SIGKILL after 2s grace").
  static ExitState TimedOut(std::string detail) {
    return {Kind::kTimedOut, 0, false, std::move(detail)};
  }
  static ExitState SpawnFailed(int err, std::string detail) {
    return {Kind::kSpawnFailed, err, false, std::move(detail)};
  }
  // The main process exited with `code` but descendants held its output open past the grace.
  static ExitState Leaked(int code, std::string detail) {
    return {Kind::kLeaked, code, false, std::move(detail)};
  }
  static ExitState Cancelled(std::string detail) {
    return {Kind::kCancelled, 0, false, std::move(detail)};
  }
  // For decoders: builds any state from its parts.
  static ExitState FromParts(Kind kind, int value, bool core_dumped, std::string detail) {
    return {kind, value, core_dumped, std::move(detail)};
  }

  Kind kind() const { return kind_; }
  int exit_code() const { return kind_ == Kind::kExited || kind_ == Kind::kLeaked ? value_ : 0; }
  int signal() const { return kind_ == Kind::kSignaled ? value_ : 0; }
  int spawn_errno() const { return kind_ == Kind::kSpawnFailed ? value_ : 0; }
  int raw_value() const { return value_; }
  bool core_dumped() const { return core_dumped_; }
  const std::string& detail() const { return detail_; }
  bool passed() const { return kind_ == Kind::kExited && value_ == 0; }

  // One short phrase: "exit 1", "SIGSEGV (core dumped)", "timed out", "failed to start: ...".
  std::string Describe() const;

  friend bool operator==(const ExitState&, const ExitState&) = default;

 private:
  ExitState(Kind kind, int value, bool core, std::string detail)
      : kind_(kind), value_(value), core_dumped_(core), detail_(std::move(detail)) {}

  Kind kind_;
  int value_;
  bool core_dumped_;
  std::string detail_;
};

const char* KindName(ExitState::Kind kind);  // "exited", "signaled", ... (wire names)
bool KindFromName(const std::string& name, ExitState::Kind* out);

// "SIGSEGV" for 11; "signal 77" for unknown numbers.
std::string SignalName(int signal);

}  // namespace testfarm
