#pragma once
// A temporary directory for a test, removed with everything in it when the test is done.
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace testfarm::test {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "testfarm-test-") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "XXXXXX")).string();
    if (::mkdtemp(pattern.data()) != nullptr) path_ = std::filesystem::canonical(pattern);
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Empty if the directory could not be made.
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace testfarm::test
