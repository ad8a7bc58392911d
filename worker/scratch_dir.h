#pragma once
// A private temporary directory (a slot's TMPDIR): created with mkdtemp (mode 0700), emptied
// between jobs, and removed with everything in it when the owner goes away, even if a job made
// parts of it read-only.
#include <sys/stat.h>
#include <sys/types.h>

#include <filesystem>
#include <string>

#include "shared/result.h"

namespace testfarm::worker {

class ScratchDir {
 public:
  // A fresh directory `parent`/`prefix`XXXXXX.
  static Result<ScratchDir> Create(const std::filesystem::path& parent, const std::string& prefix);

  ScratchDir() = default;
  ScratchDir(ScratchDir&& other) noexcept;
  ScratchDir& operator=(ScratchDir&& other) noexcept;
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ~ScratchDir() { Remove(); }

  const std::filesystem::path& path() const { return path_; }
  bool valid() const { return !path_.empty(); }
  // Removes the tree now; returns false if something could not be removed. Idempotent.
  bool Remove();
  // Removes everything inside and restores mode 0700, keeping the directory itself (cheap when
  // it is already empty). Returns false if something could not be removed, or if the path no
  // longer names the directory we made (a job replaced it, e.g. with a symlink): nothing outside
  // is ever touched, and the owner should drop this one and make a fresh directory.
  bool Empty();

 private:
  ScratchDir(std::filesystem::path path, dev_t device, ino_t inode)
      : path_(std::move(path)), device_(device), inode_(inode) {}
  // lstat()s the path into `st`; true if it is still the directory we made.
  bool StillOurs(struct stat* st) const;

  std::filesystem::path path_;
  dev_t device_ = 0;
  ino_t inode_ = 0;
};

// The system temporary directory ($TMPDIR, else /tmp), never throwing.
std::filesystem::path SystemTempDir();

}  // namespace testfarm::worker
