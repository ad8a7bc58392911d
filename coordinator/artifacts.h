#pragma once
// What a remote worker needs to run a test without sharing the coordinator's filesystem: the
// executable, the libraries it loads from the build tree and the suite's data files, each named
// by its SHA-256, laid out relative to one root directory. The catalog also answers where a
// blob's bytes are when a worker fetches it.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/test_spec.h"
#include "protocol/messages.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct ArtifactSet {
  std::string root;                           // absolute; every file and the cwd are inside it
  std::vector<protocol::ArtifactFile> files;  // empty: nothing to ship (e.g. a system command)
  std::vector<std::string> library_dirs;      // relative to root
};

class ArtifactCatalog;
// The files each test needs shipped (nullptr for a test decided before the run). A test whose
// files cannot be read or resolved fails before the run, with why (its `error`).
std::vector<const ArtifactSet*> ShipTests(ArtifactCatalog& catalog, std::vector<TestSpec>& tests);

// The piece of the blob at `path` a Fetch asks for (or the error why it cannot be read).
protocol::Chunk ReadChunk(const protocol::Fetch& fetch, const std::filesystem::path& path);

class ArtifactCatalog {
 public:
  // The set for `test`, computed once per distinct executable, data files and cwd. Errors name
  // the file that cannot be read or resolved.
  Result<const ArtifactSet*> For(const TestSpec& test);

  // The file holding blob `sha256`, or nullptr if no set has it.
  const std::filesystem::path* PathOf(const std::string& sha256) const;

  // Bytes and files hashed so far (each file once).
  uint64_t hashed_bytes() const { return hashed_bytes_; }

 private:
  Result<ArtifactSet> Build(const TestSpec& test);
  Result<protocol::ArtifactFile> Describe(const std::filesystem::path& file);

  std::map<std::string, ArtifactSet> sets_;             // by executable + data + cwd
  std::map<std::string, std::filesystem::path> blobs_;  // sha256 -> a file with that content
  std::map<std::filesystem::path, protocol::ArtifactFile> files_;  // by absolute path
  uint64_t hashed_bytes_ = 0;
};

// A test's executable when it is a file of the user's: its command names a path (a bare name is
// looked up on PATH where it runs) outside the system directories. Absolute and lexically normal.
std::optional<std::filesystem::path> OwnExecutable(const TestSpec& test);

// The deepest directory containing every path (all absolute and lexically normal).
std::filesystem::path CommonRoot(const std::vector<std::filesystem::path>& paths);

}  // namespace testfarm::coordinator
