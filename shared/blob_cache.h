#pragma once
// A size-bounded on-disk cache of content-addressed blobs (test executables, libraries, data),
// named by the lowercase hex SHA-256 of their content: a worker's cache of what it fetched, and a
// farm's store of what its clients uploaded. Several processes may share one directory: all
// state is on disk, LRU order is the blobs' mtimes, and a flock on <dir>/lock keeps evictions and
// removals from racing each other. The lock file also records the blobs' total size, so a commit
// knows whether to evict without scanning the directory: a full cache is scanned once per tenth
// of its bound committed (eviction goes down to 90% of the bound), not on every commit.
//
// Layout:
//   <dir>/lock                 flock: exclusive to add or delete blobs (and update the size
//                              record it holds), shared to look them up or touch them
//   <dir>/blobs/<sha[0:2]>/<sha>  committed blobs, mode 0555, never modified in place
//   <dir>/tmp/<sha>.<pid>.<n>  downloads in progress (removed by Evict once an hour stale)
//
// A BlobCache holds no mutable state in memory (beyond a count of its scans), so one object may be
// used from several threads and several objects (in one or more processes) may share a directory.
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "shared/off_loop.h"
#include "shared/result.h"
#include "shared/unique_fd.h"

namespace testfarm {

struct BlobCacheOptions {
  std::filesystem::path dir;         // created if missing (with parents)
  uint64_t max_bytes = 10ull << 30;  // eviction bound on the total size of the blobs
};

// Temp files in <dir>/tmp whose mtime is older than this are left by a crashed worker (or a
// download that stalled that long) and are removed by Evict.
inline constexpr int64_t kStaleTempSeconds = 3600;

// A download in progress: a temp file inside the cache dir, removed unless committed.
class PendingBlob {
 public:
  PendingBlob() = default;
  PendingBlob(PendingBlob&& other) noexcept;
  PendingBlob& operator=(PendingBlob&& other) noexcept;
  PendingBlob(const PendingBlob&) = delete;
  PendingBlob& operator=(const PendingBlob&) = delete;
  ~PendingBlob() { Discard(); }

  const std::string& sha256() const { return sha256_; }
  uint64_t size() const { return size_; }  // expected
  // The end of the written prefix: every byte before it has been written.
  uint64_t written() const { return written_; }
  const std::filesystem::path& temp_path() const { return temp_path_; }
  // False once committed, discarded or moved from.
  bool valid() const { return fd_.valid(); }

  // Writes `data` at `offset` (pwrite). Chunks must arrive in order: `offset` may not be past
  // written() (rewriting an already written range is allowed, e.g. a retransmitted chunk). Error
  // if offset + data.size() exceeds the expected size, on a gap, or on an I/O error. True on
  // success.
  Status Write(uint64_t offset, std::string_view data);
  // Closes and deletes the temp file now. Idempotent.
  void Discard();

 private:
  friend class BlobCache;
  PendingBlob(std::string sha256, uint64_t size, std::filesystem::path temp_path, UniqueFd fd)
      : sha256_(std::move(sha256)),
        size_(size),
        temp_path_(std::move(temp_path)),
        fd_(std::move(fd)) {}
  // Forgets the temp file without deleting it (it has been renamed into the cache).
  void Release();

  std::string sha256_;
  uint64_t size_ = 0;
  uint64_t written_ = 0;
  std::filesystem::path temp_path_;
  UniqueFd fd_;
};

class BlobCache {
 public:
  // Creates the directory (and blobs/, tmp/, lock) if missing. The error names the directory and
  // why it cannot be used (e.g. not writable). A relative dir is made absolute. The cache is
  // measured (a scan) and its size recorded; stale temp files are removed.
  static Result<BlobCache> Open(BlobCacheOptions options);

  const std::filesystem::path& dir() const { return dir_; }
  uint64_t max_bytes() const { return max_bytes_; }

  // The blob's path if cached, marking it recently used (its mtime is set to now). nullopt for a
  // sha256 that is not IsSha256Hex, or if the entry is missing or not a regular file.
  // The path stays valid until the blob is evicted; a caller that finds it gone (ENOENT) later
  // should treat the blob as not cached.
  std::optional<std::filesystem::path> Find(const std::string& sha256);
  // As above, but an entry whose size is not `expected_size` is not cached: it is deleted.
  std::optional<std::filesystem::path> Find(const std::string& sha256, uint64_t expected_size);

  // Starts a download of `size` bytes into a new temp file. Error for a bad sha256 string or if
  // the temp file cannot be created.
  Result<PendingBlob> Begin(const std::string& sha256, uint64_t size);

  // Verifies the size and SHA-256 of the pending file; on a match makes it part of the cache
  // atomically (rename into place; another process committing the same blob meanwhile is fine)
  // with mode 0555 and returns the blob's path. If the cache is then over its bound, the least
  // recently used blobs (never `keep` or this one) go until it is at 90% of it. On a mismatch the
  // temp file is deleted and the error is "hash mismatch for <sha>: got <actual>"; an incomplete
  // download is rejected the same way. A bad blob never enters the cache.
  Result<std::filesystem::path> Commit(PendingBlob blob, std::set<std::string> keep = {});

  // Deletes least-recently-used blobs (oldest mtime first) until the total size is <= max_bytes,
  // never deleting those in `keep`, under an exclusive flock on <dir>/lock. Also removes temp
  // files older than kStaleTempSeconds. Returns the bytes of blobs freed (stale temp files are
  // not counted).
  uint64_t Evict(const std::set<std::string>& keep = {});

  // The total size of the cached blobs, as recorded (a scan only if there is no record).
  uint64_t TotalBytes() const;

  // Directory scans this object made: Open's measure and each eviction (and each commit while
  // the size record cannot be read or kept). For tests that count operations.
  uint64_t scans() const { return scans_->load(std::memory_order_relaxed); }

 private:
  BlobCache(std::filesystem::path dir, uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  uint64_t ScanTotal() const;
  // Evict's work, under the exclusive lock `lock_fd`: if the blobs are over the bound, down to
  // `bound`; records the total.
  uint64_t EvictLocked(int lock_fd, uint64_t bound, const std::set<std::string>& keep);
  // Where the blob named `sha256` (already checked with IsSha256Hex) lives.
  std::filesystem::path BlobPath(const std::string& sha256) const;

  std::filesystem::path dir_;
  uint64_t max_bytes_ = 0;
  std::shared_ptr<std::atomic<uint64_t>> scans_ = std::make_shared<std::atomic<uint64_t>>(0);
};

// Makes `dest` a copy of `blob`: a hard link when possible, else (EXDEV, EPERM, EMLINK) a copy
// with the same mode; with `force_copy` always a copy, given `copy_mode` if set. Creates dest's
// parent directories. If dest exists it is replaced atomically (link or copy to a temp name in
// dest's directory, then rename).
// A hard link shares the blob's inode: whoever may write to it (root, or its owner after a chmod)
// could change the cached blob too — so files a test might write are better copied.
Status LinkOrCopy(const std::filesystem::path& blob, const std::filesystem::path& dest,
                  bool force_copy = false, std::optional<mode_t> copy_mode = std::nullopt);

// Commits `blob` into `cache` (hashing, syncing, maybe evicting: as long as the blob is large)
// on `off_loop`, then calls `then` with the outcome on the loop, when it runs the OffLoop's
// finished work. Without an OffLoop, here and now.
void CommitOffLoop(BlobCache& cache, OffLoop* off_loop, PendingBlob blob,
                   std::set<std::string> keep,
                   std::function<void(Result<std::filesystem::path>)> then);

}  // namespace testfarm
