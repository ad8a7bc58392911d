#include "coordinator/profile_pieces.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

void ProfilePieces::Add(const protocol::ProfileData& piece) {
  Profile& profile = profiles_[piece.index];
  if (profile.failed) return;
  if (profile.path.empty()) {
    profile.path = dir_ / ("worker-" + std::to_string(piece.index) + ".profdata");
  }
  auto fail = [&](const std::string& why) {
    profile.failed = true;
    errors_.push_back("profile " + std::to_string(piece.index) + ": " + why);
  };
  if (dir_.empty()) return fail("this run asked for no coverage");
  if (piece.offset != profile.written) return fail("pieces out of order");
  if (profile.written > 0 && piece.size != profile.size) {
    return fail("its pieces disagree about its size");
  }
  UniqueFd fd(::open(profile.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!fd) return fail("cannot write " + profile.path.string() + ": " + ErrnoText(errno));
  if (::write(fd.get(), piece.data.data(), piece.data.size()) !=
      static_cast<ssize_t>(piece.data.size())) {
    return fail("cannot write " + profile.path.string() + ": " + ErrnoText(errno));
  }
  profile.written += piece.data.size();
  profile.size = piece.size;
}

std::vector<std::filesystem::path> ProfilePieces::Whole() const {
  std::vector<std::filesystem::path> whole;
  for (const auto& [index, profile] : profiles_) {
    if (!profile.failed && profile.written == profile.size) whole.push_back(profile.path);
  }
  return whole;
}

}  // namespace testfarm::coordinator
