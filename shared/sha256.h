#pragma once
// SHA-256 (OpenSSL's EVP, which uses the CPU's SHA instructions where there are any). Artifacts
// are named by the lowercase hex digest of their content.
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "shared/result.h"

namespace testfarm {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // The digest of everything given so far, as 64 lowercase hex digits. Ends the hash: call
  // Update again only after Reset.
  std::string HexDigest();
  void Reset();

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string Sha256Hex(std::string_view data);

// The digest of a file's content. The error names the file and why it could not be read.
Result<std::string> Sha256File(const std::filesystem::path& path);

// 64 lowercase hex digits: what a digest looks like (checked before one is used as a file name).
bool IsSha256Hex(std::string_view text);

}  // namespace testfarm
