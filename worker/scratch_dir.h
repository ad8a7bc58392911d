#pragma once
// A private temporary directory (a slot's TMPDIR): created with mkdtemp (mode 0700), emptied
// between jobs, and removed with everything in it when the owner goes away, even if a job made
// parts of it read-only.
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
  // it is already empty). Returns false if something could not be removed.
  bool Empty();

 private:
  explicit ScratchDir(std::filesystem::path path) : path_(std::move(path)) {}

  std::filesystem::path path_;
};

// The system temporary directory ($TMPDIR, else /tmp), never throwing.
std::filesystem::path SystemTempDir();

}  // namespace testfarm::worker
