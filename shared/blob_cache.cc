#include "shared/blob_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <ctime>
#include <limits>
#include <system_error>
#include <utility>
#include <vector>

#include "shared/errno_text.h"
#include "shared/sha256.h"

namespace testfarm {

namespace fs = std::filesystem;

namespace {

constexpr mode_t kBlobMode = 0555;
constexpr int kMaxNameAttempts = 100;

// A suffix that no other live process or thread uses: <pid>.<counter>. A clash with a file left
// by a dead process (pid reuse, or another pid namespace) is caught by O_EXCL / link's EEXIST,
// and the caller takes the next one.
std::string UniqueSuffix() {
  static std::atomic<uint64_t> counter{0};
  return std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
}

// Opens <dir>/lock and flocks it with `operation` (LOCK_EX or LOCK_SH). The lock is released
// when the returned fd is closed. Each call opens the file anew, so threads of one process
// exclude each other too (flock locks belong to the open file description). An invalid fd if the
// lock cannot be had: callers go ahead without it (the worst outcome is an extra eviction).
UniqueFd LockCache(const fs::path& dir, int operation) {
  UniqueFd fd(::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return fd;
  while (::flock(fd.get(), operation) != 0) {
    if (errno != EINTR) return UniqueFd();
  }
  return fd;
}

bool IsHexByte(std::string_view name) {
  return name.size() == 2 && std::all_of(name.begin(), name.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

struct BlobEntry {
  std::string sha256;
  fs::path path;
  uint64_t size = 0;
  struct timespec mtime {};
};

// The blobs' total size as last recorded in the lock file (read under the lock `lock_fd` holds),
// or nullopt if it was never recorded (a new cache, or one made by an older testfarm) or cannot
// be read. Kept so that a commit need not scan the whole directory to know whether to evict.
std::optional<uint64_t> ReadUsage(int lock_fd) {
  if (lock_fd < 0) return std::nullopt;
  char text[32] = {};
  ssize_t n = ::pread(lock_fd, text, sizeof text - 1, 0);
  if (n <= 1 || text[n - 1] != '\n') return std::nullopt;
  uint64_t bytes = 0;
  for (ssize_t i = 0; i + 1 < n; ++i) {
    if (text[i] < '0' || text[i] > '9' || bytes > (std::numeric_limits<uint64_t>::max() - 9) / 10) {
      return std::nullopt;
    }
    bytes = bytes * 10 + static_cast<uint64_t>(text[i] - '0');
  }
  return bytes;
}

// Records the blobs' total size; only under the exclusive lock. Best effort: a failed write
// leaves the record unknown or stale, and the next commit scans.
void WriteUsage(int lock_fd, uint64_t bytes) {
  if (lock_fd < 0) return;
  const std::string text = std::to_string(bytes) + "\n";
  if (::pwrite(lock_fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size())) {
    (void)::ftruncate(lock_fd, static_cast<off_t>(text.size()));
  } else {
    (void)::ftruncate(lock_fd, 0);
  }
}

// Every regular file blobs/<xx>/<sha> with a valid name in the right shard. Anything else is
// ignored (and never deleted): we only touch what we could have made.
std::vector<BlobEntry> ScanBlobs(const fs::path& blobs_dir) {
  std::vector<BlobEntry> entries;
  std::error_code ec;
  for (fs::directory_iterator shard(blobs_dir, ec), end; !ec && shard != end; shard.increment(ec)) {
    std::string shard_name = shard->path().filename().string();
    if (!IsHexByte(shard_name)) continue;
    struct stat shard_st {};
    if (::lstat(shard->path().c_str(), &shard_st) != 0 || !S_ISDIR(shard_st.st_mode)) continue;
    std::error_code inner_ec;
    for (fs::directory_iterator it(shard->path(), inner_ec); !inner_ec && it != end;
         it.increment(inner_ec)) {
      std::string name = it->path().filename().string();
      if (!IsSha256Hex(name) || name.compare(0, 2, shard_name) != 0) continue;
      struct stat st {};
      if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      entries.push_back(
          BlobEntry{std::move(name), it->path(), static_cast<uint64_t>(st.st_size), st.st_mtim});
    }
  }
  return entries;
}

// Removes regular files in tmp/ whose mtime is more than kStaleTempSeconds ago.
void RemoveStaleTemps(const fs::path& tmp_dir) {
  const time_t now = ::time(nullptr);
  std::error_code ec;
  for (fs::directory_iterator it(tmp_dir, ec), end; !ec && it != end; it.increment(ec)) {
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (now - st.st_mtim.tv_sec > kStaleTempSeconds) ::unlink(it->path().c_str());
  }
}

// The SHA-256 of everything in `fd` from offset 0 to its end, and how many bytes that was.
Result<std::pair<std::string, uint64_t>> HashFd(int fd, const fs::path& name) {
  Sha256 hash;
  std::vector<char> buffer(1 << 20);
  uint64_t offset = 0;
  while (true) {
    ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot read " + name.string() + ": " + ErrnoText(errno)};
    if (n == 0) break;
    hash.Update(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
    offset += static_cast<uint64_t>(n);
  }
  return std::make_pair(hash.HexDigest(), offset);
}

// Sets the mtime (and atime) of `path` to now, not following a symlink. False if it is gone.
bool Touch(const fs::path& path) {
  return ::utimensat(AT_FDCWD, path.c_str(), nullptr, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

// A path that is unlinked on destruction unless released.
class TempPath {
 public:
  explicit TempPath(fs::path path) : path_(std::move(path)) {}
  TempPath(const TempPath&) = delete;
  TempPath& operator=(const TempPath&) = delete;
  ~TempPath() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Release() { path_.clear(); }

 private:
  fs::path path_;
};

bool FallBackToCopy(int err) {
  return err == EXDEV || err == EPERM || err == EMLINK;
}

// Copies all of `in` to `out` (both regular files), kernel-side where it can.
Status CopyContent(int in, int out, const fs::path& from, const fs::path& to) {
  bool use_copy_file_range = true;
  std::vector<char> buffer;
  while (true) {
    if (use_copy_file_range) {
      ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, 1 << 30, 0);
      if (n > 0) continue;
      if (n == 0) return Ok{};
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
        return Error{"cannot copy " + from.string() + " to " + to.string() + ": " +
                     ErrnoText(errno)};
      }
      use_copy_file_range = false;  // nothing was copied by the failed call: go on by hand
      buffer.resize(1 << 20);
    }
    ssize_t n = ::read(in, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot read " + from.string() + ": " + ErrnoText(errno)};
    if (n == 0) return Ok{};
    std::string_view left(buffer.data(), static_cast<std::size_t>(n));
    while (!left.empty()) {
      ssize_t w = ::write(out, left.data(), left.size());
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return Error{"cannot write " + to.string() + ": " + ErrnoText(errno)};
      left.remove_prefix(static_cast<std::size_t>(w));
    }
  }
}

// Copies `from` to the new file `to` (created with O_EXCL), with the same permission bits.
// Returns false (not an error) if `to` already exists.
Result<bool> CopyToNewFile(const fs::path& from, const fs::path& to) {
  UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in) return Error{"cannot read " + from.string() + ": " + ErrnoText(errno)};
  struct stat st {};
  if (::fstat(in.get(), &st) != 0) {
    return Error{"cannot inspect " + from.string() + ": " + ErrnoText(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{"cannot copy " + from.string() + ": not a regular file"};
  UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out && errno == EEXIST) return false;
  if (!out) return Error{"cannot create " + to.string() + ": " + ErrnoText(errno)};
  TempPath guard(to);
  if (Status copied = CopyContent(in.get(), out.get(), from, to); !copied) {
    return copied.error();
  }
  if (::fchmod(out.get(), st.st_mode & 07777) != 0) {
    return Error{"cannot set the mode of " + to.string() + ": " + ErrnoText(errno)};
  }
  if (::close(out.Release()) != 0) {
    return Error{"cannot write " + to.string() + ": " + ErrnoText(errno)};
  }
  guard.Release();
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PendingBlob

PendingBlob::PendingBlob(PendingBlob&& other) noexcept
    : sha256_(std::exchange(other.sha256_, {})),
      size_(std::exchange(other.size_, 0)),
      written_(std::exchange(other.written_, 0)),
      temp_path_(std::exchange(other.temp_path_, {})),
      fd_(std::move(other.fd_)) {}

PendingBlob& PendingBlob::operator=(PendingBlob&& other) noexcept {
  if (this != &other) {
    Discard();
    sha256_ = std::exchange(other.sha256_, {});
    size_ = std::exchange(other.size_, 0);
    written_ = std::exchange(other.written_, 0);
    temp_path_ = std::exchange(other.temp_path_, {});
    fd_ = std::move(other.fd_);
  }
  return *this;
}

void PendingBlob::Discard() {
  fd_.Reset();
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

void PendingBlob::Release() {
  fd_.Reset();
  temp_path_.clear();
}

Status PendingBlob::Write(uint64_t offset, std::string_view data) {
  if (!fd_) return Error{"write to a download of " + sha256_ + " that is not open"};
  if (offset > size_ || data.size() > size_ - offset) {
    return Error{"write of " + std::to_string(data.size()) + " bytes at offset " +
                 std::to_string(offset) + " is past the end of " + sha256_ + " (" +
                 std::to_string(size_) + " bytes)"};
  }
  if (offset > written_) {
    return Error{"write at offset " + std::to_string(offset) + " of " + sha256_ +
                 " leaves a gap: only " + std::to_string(written_) + " bytes written"};
  }
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{"cannot write " + temp_path_.string() + ": " + ErrnoText(errno)};
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<uint64_t>(n);
    written_ = std::max(written_, offset);
  }
  return Ok{};
}

// ---------------------------------------------------------------------------------------------
// BlobCache

Result<BlobCache> BlobCache::Open(BlobCacheOptions options) {
  std::error_code ec;
  fs::path dir = fs::absolute(options.dir, ec);
  if (ec || options.dir.empty()) {
    return Error{"cannot open blob cache " + options.dir.string() + ": " +
                 (ec ? ec.message() : std::string("empty path"))};
  }
  for (const fs::path& sub : {dir, dir / "blobs", dir / "tmp"}) {
    fs::create_directories(sub, ec);
    if (ec) return Error{"cannot create blob cache " + sub.string() + ": " + ec.message()};
    struct stat st {};
    if (::stat(sub.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Error{"cannot open blob cache " + sub.string() + ": " + ErrnoText(ENOTDIR)};
    }
  }
  // Proves the directory is writable, and makes the lock file every later operation uses.
  UniqueFd lock(::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock) {
    return Error{"cannot open blob cache " + dir.string() + ": " + (dir / "lock").string() + ": " +
                 ErrnoText(errno)};
  }
  if (::faccessat(AT_FDCWD, (dir / "tmp").c_str(), W_OK | X_OK, AT_EACCESS) != 0 ||
      ::faccessat(AT_FDCWD, (dir / "blobs").c_str(), W_OK | X_OK, AT_EACCESS) != 0) {
    return Error{"cannot open blob cache " + dir.string() + ": " + ErrnoText(errno)};
  }
  BlobCache cache(std::move(dir), options.max_bytes);
  {
    // Measured once, here; commits then keep count. (Measured even when recorded: a process
    // that died between a commit's link and its record left the record short.)
    UniqueFd exclusive = LockCache(cache.dir_, LOCK_EX);
    WriteUsage(exclusive.get(), cache.ScanTotal());
    RemoveStaleTemps(cache.dir_ / "tmp");
  }
  return cache;
}

uint64_t BlobCache::ScanTotal() const {
  scans_->fetch_add(1, std::memory_order_relaxed);
  uint64_t total = 0;
  for (const BlobEntry& entry : ScanBlobs(dir_ / "blobs")) total += entry.size;
  return total;
}

fs::path BlobCache::BlobPath(const std::string& sha256) const {
  return dir_ / "blobs" / sha256.substr(0, 2) / sha256;
}

std::optional<fs::path> BlobCache::Find(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) return std::nullopt;
  fs::path path = BlobPath(sha256);
  // Shared: an eviction (which scans, then deletes) cannot come between our check and touch.
  UniqueFd lock = LockCache(dir_, LOCK_SH);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  if (!Touch(path)) return std::nullopt;
  return path;
}

std::optional<fs::path> BlobCache::Find(const std::string& sha256, uint64_t expected_size) {
  if (!IsSha256Hex(sha256)) return std::nullopt;
  fs::path path = BlobPath(sha256);
  auto good = [&](const struct stat& st) {
    return S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == expected_size;
  };
  struct stat st {};
  {
    UniqueFd lock = LockCache(dir_, LOCK_SH);
    if (::lstat(path.c_str(), &st) != 0) return std::nullopt;
    if (good(st)) {
      if (!Touch(path)) return std::nullopt;
      return path;
    }
  }  // the shared lock must go before we ask for the exclusive one
  if (S_ISDIR(st.st_mode)) return std::nullopt;  // not ours to remove
  // A bad entry. Look again under the exclusive lock: another process may have replaced it with
  // a good one meanwhile (commits rename under the shared lock, so not while we hold this one).
  UniqueFd lock = LockCache(dir_, LOCK_EX);
  if (::lstat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return std::nullopt;
  if (good(st)) {
    if (!Touch(path)) return std::nullopt;
    return path;
  }
  if (::unlink(path.c_str()) == 0 && S_ISREG(st.st_mode)) {
    if (std::optional<uint64_t> usage = ReadUsage(lock.get())) {
      WriteUsage(lock.get(), *usage - std::min(*usage, static_cast<uint64_t>(st.st_size)));
    }
  }
  return std::nullopt;
}

Result<PendingBlob> BlobCache::Begin(const std::string& sha256, uint64_t size) {
  if (!IsSha256Hex(sha256)) return Error{"not a SHA-256 digest: \"" + sha256 + "\""};
  if (size > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return Error{"blob " + sha256 + " is too large: " + std::to_string(size) + " bytes"};
  }
  const fs::path tmp_dir = dir_ / "tmp";
  bool made_tmp_dir = false;
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    fs::path temp = tmp_dir / (sha256 + "." + UniqueSuffix());
    UniqueFd fd(::open(temp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (fd) return PendingBlob(sha256, size, std::move(temp), std::move(fd));
    int err = errno;
    if (err == EEXIST) continue;
    if (err == ENOENT && !made_tmp_dir) {  // someone removed tmp/: make it again, once
      made_tmp_dir = true;
      std::error_code ec;
      fs::create_directories(tmp_dir, ec);
      continue;
    }
    return Error{"cannot create a temp file for " + sha256 + " in " + tmp_dir.string() + ": " +
                 ErrnoText(err)};
  }
  return Error{"cannot create a temp file for " + sha256 + " in " + tmp_dir.string() +
               ": all names taken"};
}

Result<fs::path> BlobCache::Commit(PendingBlob blob, std::set<std::string> keep) {
  if (!blob.valid()) return Error{"commit of a download that is not open"};
  const std::string sha256 = blob.sha256();
  const uint64_t size = blob.size();
  const int fd = blob.fd_.get();
  if (blob.temp_path().parent_path() != dir_ / "tmp") {
    return Error{"download of " + sha256 + " belongs to another cache than " + dir_.string()};
  }
  if (blob.written() != blob.size()) {
    blob.Discard();
    return Error{"incomplete download of " + sha256 + ": " + std::to_string(blob.written()) +
                 " of " + std::to_string(blob.size()) + " bytes"};
  }
  // Hash what is on disk, not what we were given: a bad write cannot slip through.
  Result<std::pair<std::string, uint64_t>> digest = HashFd(fd, blob.temp_path());
  if (!digest) {
    blob.Discard();
    return digest.error();
  }
  if (digest->second != blob.size()) {
    blob.Discard();
    return Error{"size mismatch for " + sha256 + ": got " + std::to_string(digest->second) +
                 " bytes, expected " + std::to_string(blob.size())};
  }
  if (digest->first != sha256) {
    blob.Discard();
    return Error{"hash mismatch for " + sha256 + ": got " + digest->first};
  }
  // The data must be on disk before the name is: after a crash a blob is whole or missing.
  if (::fdatasync(fd) != 0 && errno != EINVAL) {
    int err = errno;
    blob.Discard();
    return Error{"cannot sync " + blob.temp_path().string() + ": " + ErrnoText(err)};
  }
  if (::fchmod(fd, kBlobMode) != 0) {
    int err = errno;
    blob.Discard();
    return Error{"cannot set the mode of " + blob.temp_path().string() + ": " + ErrnoText(err)};
  }
  ::futimens(fd, nullptr);  // most recently used; best effort (the last write set it already)
  // Closed before it gets its name: an executable that some process still has open for writing
  // cannot be run (ETXTBSY), and another worker sharing the cache may run it the moment it
  // appears.
  blob.fd_.Reset();
  const fs::path path = BlobPath(sha256);
  if (::mkdir(path.parent_path().c_str(), 0755) != 0 && errno != EEXIST) {
    int err = errno;
    blob.Discard();
    return Error{"cannot create " + path.parent_path().string() + ": " + ErrnoText(err)};
  }
  {
    // Exclusive, but only for a link and the size record: hashing and syncing came before.
    UniqueFd lock = LockCache(dir_, LOCK_EX);
    bool added = false;
    // The first commit of a blob wins and is never replaced: replacing it would unlink the inode
    // another worker may be about to link (link() of a file whose last name just went is ENOENT).
    // Ours is then simply dropped: same content.
    if (::link(blob.temp_path().c_str(), path.c_str()) == 0) {
      added = true;
      blob.Discard();
    } else if (errno == EEXIST) {
      blob.Discard();
    } else if (errno == EPERM || errno == EMLINK || errno == EOPNOTSUPP) {
      // A filesystem without hard links: rename, which may replace (same content).
      struct stat before {};
      added = ::lstat(path.c_str(), &before) != 0;
      if (::rename(blob.temp_path().c_str(), path.c_str()) != 0) {
        int err = errno;
        blob.Discard();
        return Error{"cannot move " + sha256 + " into " + path.parent_path().string() + ": " +
                     ErrnoText(err)};
      }
      blob.Release();
    } else {
      int err = errno;
      blob.Discard();
      return Error{"cannot move " + sha256 + " into " + path.parent_path().string() + ": " +
                   ErrnoText(err)};
    }
    keep.insert(sha256);
    std::optional<uint64_t> usage = ReadUsage(lock.get());
    if (usage && added) *usage += size;
    if (usage && *usage <= max_bytes_) {
      WriteUsage(lock.get(), *usage);
    } else {
      // Down to the low-water mark, so that a full cache scans once per tenth of its bound
      // committed rather than on every commit.
      EvictLocked(lock.get(), max_bytes_ - max_bytes_ / 10, keep);
    }
  }
  return path;
}

uint64_t BlobCache::Evict(const std::set<std::string>& keep) {
  UniqueFd lock = LockCache(dir_, LOCK_EX);
  return EvictLocked(lock.get(), max_bytes_, keep);
}

uint64_t BlobCache::EvictLocked(int lock_fd, uint64_t bound, const std::set<std::string>& keep) {
  RemoveStaleTemps(dir_ / "tmp");
  scans_->fetch_add(1, std::memory_order_relaxed);
  std::vector<BlobEntry> entries = ScanBlobs(dir_ / "blobs");
  uint64_t total = 0;
  for (const BlobEntry& entry : entries) total += entry.size;
  uint64_t freed = 0;
  if (total > max_bytes_) {
    std::sort(entries.begin(), entries.end(), [](const BlobEntry& a, const BlobEntry& b) {
      if (a.mtime.tv_sec != b.mtime.tv_sec) return a.mtime.tv_sec < b.mtime.tv_sec;
      if (a.mtime.tv_nsec != b.mtime.tv_nsec) return a.mtime.tv_nsec < b.mtime.tv_nsec;
      return a.sha256 < b.sha256;
    });
    for (const BlobEntry& entry : entries) {
      if (total <= bound) break;
      if (keep.count(entry.sha256) != 0) continue;
      if (::unlink(entry.path.c_str()) == 0) {
        freed += entry.size;
        total -= entry.size;
      } else if (errno == ENOENT) {
        total -= entry.size;  // gone already (only if the lock could not be had)
      }
    }
  }
  WriteUsage(lock_fd, total);
  return freed;
}

uint64_t BlobCache::TotalBytes() const {
  UniqueFd lock = LockCache(dir_, LOCK_SH);
  if (std::optional<uint64_t> usage = ReadUsage(lock.get())) return *usage;
  return ScanTotal();
}

// ---------------------------------------------------------------------------------------------
// LinkOrCopy

Status LinkOrCopy(const fs::path& blob, const fs::path& dest, bool force_copy,
                  std::optional<mode_t> copy_mode) {
  if (!dest.has_filename()) {
    return Error{"cannot link " + blob.string() + " to " + dest.string() + ": not a file name"};
  }
  const fs::path parent = dest.parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    fs::create_directories(parent, ec);
    if (ec) return Error{"cannot create directory " + parent.string() + ": " + ec.message()};
  }
  // A short temp name (dest's own name may be near NAME_MAX) next to dest, so rename is atomic.
  const fs::path temp_dir = parent.empty() ? fs::path(".") : parent;
  fs::path made;
  bool copy = force_copy;
  for (int attempt = 0; attempt < kMaxNameAttempts && made.empty(); ++attempt) {
    fs::path name = temp_dir / (".testfarm-link." + UniqueSuffix() + ".tmp");
    if (!copy) {
      if (::link(blob.c_str(), name.c_str()) == 0) {
        made = std::move(name);
        break;
      }
      int err = errno;
      if (err == EEXIST) continue;
      if (!FallBackToCopy(err)) {
        return Error{"cannot link " + blob.string() + " to " + dest.string() + ": " +
                     ErrnoText(err)};
      }
      copy = true;
    }
    Result<bool> copied = CopyToNewFile(blob, name);
    if (!copied) return copied.error();
    if (*copied) made = std::move(name);
  }
  if (made.empty()) {
    return Error{"cannot link " + blob.string() + " to " + dest.string() + ": all names taken"};
  }
  // Unlinks the temp name when we return. After a successful rename it is normally gone already
  // (a harmless ENOENT); but if dest already was a link to the same file, rename() does nothing
  // and leaves it, and this removes it.
  TempPath temp(made);
  // A copy is the caller's own; a link keeps the blob's mode (never make a blob writable).
  if (copy && copy_mode && ::chmod(made.c_str(), *copy_mode) != 0) {
    return Error{"cannot set the mode of " + dest.string() + ": " + ErrnoText(errno)};
  }
  if (::rename(made.c_str(), dest.c_str()) != 0) {
    return Error{"cannot replace " + dest.string() + ": " + ErrnoText(errno)};
  }
  return Ok{};
}

void CommitOffLoop(BlobCache& cache, OffLoop* off_loop, PendingBlob blob,
                   std::set<std::string> keep, std::function<void(Result<fs::path>)> then) {
  // Shared: OffLoop work is a copyable std::function, and a PendingBlob moves only.
  auto pending = std::make_shared<PendingBlob>(std::move(blob));
  OffLoop::Work work = [&cache, pending, keep = std::move(keep),
                        then = std::move(then)]() -> OffLoop::Done {
    auto committed = std::make_shared<Result<fs::path>>(cache.Commit(std::move(*pending), keep));
    return [then, committed] { then(std::move(*committed)); };
  };
  if (off_loop != nullptr) {
    off_loop->Post(std::move(work));
  } else if (OffLoop::Done done = work()) {
    done();
  }
}

}  // namespace testfarm
