#pragma once
// `testfarm worker --health-file FILE`: a file that says what the worker is doing, for a
// container's probes. It holds one line, "STATE ENDPOINT" (STATE: connecting, connected,
// draining), rewritten (write and rename) whenever the state changes and at least every
// `refresh`, so its modification time shows the worker's loop is alive. It is removed when the
// worker exits. A readiness probe greps for "^connected"; a liveness probe checks its age.
#include <filesystem>
#include <optional>
#include <string>

#include "shared/clock.h"

namespace testfarm::worker {

class HealthFile {
 public:
  HealthFile(std::filesystem::path path, std::string endpoint, Millis refresh);
  ~HealthFile();  // removes the file
  HealthFile(const HealthFile&) = delete;
  HealthFile& operator=(const HealthFile&) = delete;

  // The worker's state now: the file is rewritten if it changed or is due for a refresh. A
  // failure to write is logged (once per kind of failure), never fatal.
  void Set(const char* state, SteadyTime now);
  // When the file is next due for a refresh (nullopt before the first Set).
  std::optional<SteadyTime> NextRefresh() const;
  const std::filesystem::path& path() const { return path_; }
  // Why the last write failed; empty: it did not.
  const std::string& error() const { return last_error_; }

 private:
  std::filesystem::path path_;
  std::string endpoint_;
  Millis refresh_;
  std::string state_;
  std::optional<SteadyTime> written_at_;
  std::string last_error_;
};

}  // namespace testfarm::worker
