#include "worker/health_file.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::worker {

HealthFile::HealthFile(std::filesystem::path path, std::string endpoint, Millis refresh)
    : path_(std::move(path)), endpoint_(std::move(endpoint)), refresh_(refresh) {}

HealthFile::~HealthFile() {
  std::error_code ignored;
  std::filesystem::remove(path_, ignored);
}

void HealthFile::Set(const char* state, SteadyTime now) {
  if (state_ == state && written_at_ && now < *written_at_ + refresh_) return;
  state_ = state;
  written_at_ = now;
  const std::string line = state_ + " " + endpoint_ + "\n";
  // Written beside it and renamed over it: a probe never reads half a line.
  std::filesystem::path temp = path_;
  temp += ".tmp";
  std::string error;
  {
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!fd) {
      error = "cannot write " + temp.string() + ": " + ErrnoText(errno);
    } else if (::write(fd.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      error = "cannot write " + temp.string() + ": " + ErrnoText(errno);
    }
  }
  if (error.empty() && std::rename(temp.c_str(), path_.c_str()) != 0) {
    error = "cannot rename " + temp.string() + " to " + path_.string() + ": " + ErrnoText(errno);
  }
  if (!error.empty()) {
    std::error_code ignored;
    std::filesystem::remove(temp, ignored);
  }
  if (!error.empty() && error != last_error_) spdlog::error("--health-file: {}", error);
  last_error_ = error;
}

std::optional<SteadyTime> HealthFile::NextRefresh() const {
  if (!written_at_) return std::nullopt;
  return *written_at_ + refresh_;
}

}  // namespace testfarm::worker
