#pragma once
// What a remote worker needs to run a test without sharing the coordinator's filesystem: the
// executable, the libraries it loads from the build tree and the suite's data files, each named
// by its SHA-256, laid out relative to one root directory. The catalog also answers where a
// blob's bytes are when a worker fetches it.
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/test_spec.h"
#include "protocol/messages.h"
#include "shared/result.h"
#include "shared/unique_fd.h"

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

// The files a coordinator or farm serves blobs from, kept open between the chunks of a fetch (a
// blob of a few GB is thousands of chunks): opened (located anew) at a fetch's first chunk,
// closed after its last, at most `max_open` at once (the least recently read closed first). A
// file replaced during a fetch is served as it was when opened (the worker verifies every blob
// by its hash anyway).
class ServedFiles {
 public:
  explicit ServedFiles(std::size_t max_open = 64) : max_open_(max_open) {}

  // The piece of blob `fetch.sha256` the Fetch asks for, or the error why it cannot be read.
  // `locate` says which file holds the blob (or why none does); it is asked only when the blob
  // has no open file.
  protocol::Chunk Read(const protocol::Fetch& fetch,
                       const std::function<Result<std::filesystem::path>()>& locate);

  std::size_t opens() const { return opens_; }  // files opened so far (for op-count tests)
  std::size_t open_now() const { return open_.size(); }

 private:
  struct Open {
    UniqueFd fd;
    uint64_t size = 0;
    std::filesystem::path path;
    uint64_t used = 0;  // when last read, in reads
  };
  std::size_t max_open_;
  std::map<std::string, Open> open_;  // by sha256
  uint64_t reads_ = 0;
  std::size_t opens_ = 0;
};

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
