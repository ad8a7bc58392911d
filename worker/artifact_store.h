#pragma once
// The worker's side of artifact shipping. A job that names artifacts runs from files whose
// hashes match: the coordinator's own paths when this worker shares its filesystem (--shared-fs)
// and they match, else a private copy of the suite's tree built from the blob cache. Missing blobs
// are fetched in chunks with at most `window` requests in flight (credit-based flow control);
// each is verified before it enters the cache, and one that fails verification is fetched again,
// up to `max_attempts` times, and never run. A request unanswered for `resend_after` (its answer
// lost with a dropped connection) is asked again; an answer that comes twice counts once.
// Hashing, syncing and committing a fetched blob (and hashing files at the coordinator's paths)
// run off the event loop when an OffLoop is given: a multi-gigabyte binary being verified never
// delays the worker's heartbeats.
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "protocol/messages.h"
#include "shared/blob_cache.h"
#include "shared/clock.h"
#include "shared/off_loop.h"
#include "worker/scratch_dir.h"

namespace testfarm::worker {

struct ArtifactStoreOptions {
  BlobCache* cache = nullptr;  // none: only files seen at the coordinator's paths can be used
  bool shared_fs = false;      // use the coordinator's paths when their hashes match
  std::filesystem::path scratch_root;  // where this worker's copies of suites go
  unsigned window = 16;                // chunk requests in flight
  uint32_t chunk_bytes = 256 * 1024;
  unsigned max_attempts = 3;
  const Clock* clock = nullptr;  // none: the steady clock
  Millis resend_after{30000};
  // Where hashing and commits run; the loop calls its RunFinished (none: here, at once).
  OffLoop* off_loop = nullptr;
};

class ArtifactStore {
 public:
  explicit ArtifactStore(ArtifactStoreOptions options);

  enum class Status { kReady, kWaiting, kFailed };
  struct Prepared {
    Status status = Status::kReady;
    std::string error;  // kFailed: why the job cannot run
  };
  // kReady: `job` can start as it now is (argv, cwd and env rewritten to this worker's copy when
  // it runs from one). kWaiting: its set's files are being asked for, blobs fetched or files
  // hashed; ask again after OnSetManifest, OnChunk or the OffLoop's RunFinished. A job that names
  // its set (JobAssign::artifact_set) takes the set's root and library dirs; its files are
  // written into it only while its suite is not made here yet (later jobs of the set cost
  // neither a copy nor a digest of the list).
  Prepared Prepare(protocol::JobAssign& job);

  // The set requests to send now: sets jobs are waiting for, once, and again when unanswered
  // for too long.
  std::vector<protocol::SetRequest> TakeSetRequests();
  void OnSetManifest(protocol::SetManifest manifest);
  // The fetch requests to send now: those unanswered for too long again, then new ones while
  // fewer than `window` are unanswered.
  std::vector<protocol::Fetch> TakeFetches();
  void OnChunk(const protocol::Chunk& chunk);
  // When an unanswered request is due to be asked again; nullopt while none is in flight.
  std::optional<SteadyTime> NextDeadline() const;

  std::size_t in_flight() const { return in_flight_.size(); }
  uint64_t fetched_bytes() const { return fetched_bytes_; }
  // Digests of file lists made (ArtifactSetId): one per set, not one per job. For tests.
  uint64_t digests() const { return digests_; }

 private:
  struct Download {
    uint64_t size = 0;
    std::string path;  // a name for messages
    PendingBlob pending;
    uint64_t next_offset = 0;              // next byte to request
    std::map<uint64_t, std::string> held;  // chunks that arrived past a gap, by offset
    unsigned attempts = 0;
    std::string error;  // non-empty: given up
  };
  struct Suite {
    std::filesystem::path dir;  // empty: runs from the coordinator's paths
    std::string error;
  };
  struct Seen {  // a file at the coordinator's path, hashed once per version
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    std::string sha256;  // empty: could not be read
  };

  enum class Match { kYes, kNo, kHashing };
  Match MatchesAtRoot(const protocol::JobAssign& job);
  // Runs `work` off the loop (or here and now without an OffLoop).
  void Later(OffLoop::Work work);
  void StartCommit(const std::string& sha256, Download& download);
  void Committed(const std::string& sha256, Result<std::filesystem::path> committed);
  void GiveUp(const std::string& sha256, Download& download, const std::string& why);
  // The blob's path in this worker's staging area, fetching it if needed (nullopt meanwhile).
  std::optional<std::filesystem::path> Staged(const protocol::ArtifactFile& file,
                                              std::string* error);
  void Restart(const std::string& sha256, Download& download);
  // Links the blob into this run's staging area (its own link: the cache may evict the blob).
  testfarm::Status Stage(const std::string& sha256, const std::filesystem::path& blob);

  ArtifactStoreOptions options_;
  ScratchDir work_;  // staging/ (links that outlive cache eviction) and one dir per suite
  std::string work_error_;
  std::map<std::string, Suite> suites_;  // by artifact-set id
  std::map<std::string, std::filesystem::path> staged_;
  std::map<std::string, Download> downloads_;
  std::deque<std::string> queue_;  // downloads with bytes still to request, in order
  std::map<std::filesystem::path, Seen> seen_;
  std::set<std::filesystem::path> hashing_;  // files at the coordinator's paths being hashed
  std::set<std::string> materializing_;      // suites whose copy is being made
  std::set<std::string> finding_;            // blobs being looked up in the cache
  struct Asked {
    uint32_t length = 0;
    SteadyTime at;
  };
  std::map<std::pair<std::string, uint64_t>, Asked> in_flight_;  // (sha256, offset) -> request
  uint64_t fetched_bytes_ = 0;
  uint64_t digests_ = 0;
  struct KnownSet {
    std::optional<protocol::SetManifest> manifest;  // nullopt: asked, not answered yet
    std::optional<SteadyTime> asked_at;             // nullopt: to be asked
    std::string id;  // ArtifactSetId of the manifest's files, made once when it came
  };
  using SetKey = std::pair<uint64_t, uint64_t>;  // (run, set)
  std::map<SetKey, KnownSet> sets_;
  std::set<SetKey> unanswered_;  // of sets_: asked for (or to be), no answer yet
  std::deque<SetKey> answered_;  // oldest first: the first forgotten past kMaxSets
};

// The id of a job's artifact set: a digest of its root and files.
std::string ArtifactSetId(const std::string& root,
                          const std::vector<protocol::ArtifactFile>& files);
inline std::string ArtifactSetId(const protocol::JobAssign& job) {
  return ArtifactSetId(job.artifact_root, job.artifacts);
}

// Rewrites argv items, cwd and env values that name `root` or a path under it to `dir`, and puts
// `library_dirs` (under `dir`) first on LD_LIBRARY_PATH.
// `files`: the job's set (job.artifacts for a job that lists them).
void RelocateJob(protocol::JobAssign& job, const std::string& dir,
                 const std::vector<protocol::ArtifactFile>& files);
inline void RelocateJob(protocol::JobAssign& job, const std::string& dir) {
  RelocateJob(job, dir, job.artifacts);
}

}  // namespace testfarm::worker
