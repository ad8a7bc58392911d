#include "worker/scratch_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>
#include <utility>
#include <vector>

#include "shared/errno_text.h"

namespace testfarm::worker {

namespace fs = std::filesystem;

namespace {

// A job may leave directories without write or search permission; removal needs both.
void MakeTreeRemovable(const fs::path& dir) {
  std::error_code ec;
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->symlink_status(ec).type() == fs::file_type::directory) MakeTreeRemovable(it->path());
  }
}

}  // namespace

Result<ScratchDir> ScratchDir::Create(const fs::path& parent, const std::string& prefix) {
  std::string pattern = (parent / (prefix + "XXXXXX")).string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    int err = errno;
    return Error{"cannot create a directory under " + parent.string() + ": " + ErrnoText(err)};
  }
  struct stat st {};
  if (::lstat(buffer.data(), &st) != 0) {
    int err = errno;
    ::rmdir(buffer.data());
    return Error{"cannot inspect " + std::string(buffer.data()) + ": " + ErrnoText(err)};
  }
  return ScratchDir(fs::path(buffer.data()), st.st_dev, st.st_ino);
}

ScratchDir::ScratchDir(ScratchDir&& other) noexcept
    : path_(std::exchange(other.path_, {})), device_(other.device_), inode_(other.inode_) {}

ScratchDir& ScratchDir::operator=(ScratchDir&& other) noexcept {
  if (this != &other) {
    Remove();
    path_ = std::exchange(other.path_, {});
    device_ = other.device_;
    inode_ = other.inode_;
  }
  return *this;
}

bool ScratchDir::Remove() {
  if (path_.empty()) return true;
  std::error_code ec;
  fs::remove_all(path_, ec);  // never follows symlinks out of the tree
  if (ec) {
    MakeTreeRemovable(path_);
    ec.clear();
    fs::remove_all(path_, ec);
  }
  if (ec) return false;
  path_.clear();
  return true;
}

bool ScratchDir::StillOurs(struct stat* st) const {
  return ::lstat(path_.c_str(), st) == 0 && S_ISDIR(st->st_mode) && st->st_dev == device_ &&
         st->st_ino == inode_;
}

bool ScratchDir::Empty() {
  struct stat st {};
  if (path_.empty() || !StillOurs(&st)) return false;
  std::error_code ec;
  if ((st.st_mode & 07777) != 0700) {
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::replace, ec);
    if (ec) return false;
  }
  bool made_removable = false;
  for (fs::directory_iterator it(path_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code remove_ec;
    fs::remove_all(it->path(), remove_ec);  // never follows symlinks out of the tree
    if (remove_ec && !made_removable) {
      MakeTreeRemovable(path_);
      made_removable = true;
      remove_ec.clear();
      fs::remove_all(it->path(), remove_ec);
    }
    if (remove_ec) return false;
  }
  return !ec && fs::is_empty(path_, ec) && !ec;
}

fs::path SystemTempDir() {
  std::error_code ec;
  fs::path dir = fs::temp_directory_path(ec);
  return ec ? fs::path("/tmp") : dir;
}

}  // namespace testfarm::worker
