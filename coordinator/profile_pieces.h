#pragma once
// The coverage profiles a farm relays to its client (`testfarm run --farm --coverage`), a piece
// at a time as each comes from its worker: each worker's (by index) is appended to its own file
// under `dir` as it comes, never held whole. Only a profile whose every piece came, in order, up
// to the size its pieces state counts; a piece out of order or a failed write ends that profile
// with the reason, and one the farm could not finish relaying is left out (the farm says why).
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "protocol/messages.h"

namespace testfarm::coordinator {

class ProfilePieces {
 public:
  // `dir` empty: the run asked for no coverage, and any piece is an error.
  explicit ProfilePieces(std::filesystem::path dir) : dir_(std::move(dir)) {}

  void Add(const protocol::ProfileData& piece);
  // The files of the profiles that came whole, by index.
  std::vector<std::filesystem::path> Whole() const;
  // "profile N: why" for each profile that ended early.
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  struct Profile {
    std::filesystem::path path;
    uint64_t written = 0;
    uint64_t size = 0;  // the whole profile's, as its pieces say
    bool failed = false;
  };
  std::filesystem::path dir_;
  std::map<uint32_t, Profile> profiles_;
  std::vector<std::string> errors_;
};

}  // namespace testfarm::coordinator
