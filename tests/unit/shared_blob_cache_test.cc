// The blob cache on a real directory: downloads in chunks, verification, LRU eviction by mtime
// (set explicitly, never by sleeping), and two caches (threads or processes) on one directory.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <latch>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "shared/blob_cache.h"
#include "shared/sha256.h"
#include "tests/support/temp_dir.h"

namespace testfarm {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Content(std::size_t size, char seed) {
  std::string data(size, '\0');
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 1;
  for (char& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  return data;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

mode_t ModeOf(const fs::path& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void SetMtime(const fs::path& path, time_t seconds) {
  struct timespec times[2] = {{seconds, 0}, {seconds, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// Every non-directory under `dir`, recursively.
std::vector<fs::path> FilesUnder(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) files.push_back(it->path());
  }
  return files;
}

// Downloads `data` into the cache in `chunk`-byte pieces and commits it.
Result<fs::path> Put(BlobCache& cache, const std::string& data, std::size_t chunk = 4096) {
  Result<PendingBlob> pending = cache.Begin(Sha256Hex(data), data.size());
  if (!pending) return pending.error();
  for (std::size_t offset = 0; offset < data.size(); offset += chunk) {
    Status wrote = pending->Write(offset, std::string_view(data).substr(offset, chunk));
    if (!wrote) return wrote.error();
  }
  return cache.Commit(std::move(*pending));
}

class BlobCacheTest : public ::testing::Test {
 protected:
  fs::path CacheDir() const { return tmp_.path() / "cache"; }
  BlobCache OpenCache(uint64_t max_bytes = 1ull << 30) {
    Result<BlobCache> cache = BlobCache::Open({CacheDir(), max_bytes});
    EXPECT_TRUE(cache.ok()) << cache.error().message;
    return std::move(cache).value();
  }

  test::TempDir tmp_;
};

TEST_F(BlobCacheTest, ChunkedDownloadIsFoundWithSameContentAndMode0555) {
  BlobCache cache = OpenCache();
  const std::string data = Content(300'000, 1);
  const std::string sha = Sha256Hex(data);
  EXPECT_EQ(cache.Find(sha), std::nullopt);

  Result<PendingBlob> pending = cache.Begin(sha, data.size());
  ASSERT_TRUE(pending.ok()) << pending.error().message;
  EXPECT_EQ(pending->sha256(), sha);
  EXPECT_EQ(pending->size(), data.size());
  for (std::size_t offset = 0; offset < data.size(); offset += 65536) {
    ASSERT_TRUE(pending->Write(offset, std::string_view(data).substr(offset, 65536)).ok());
    EXPECT_EQ(pending->written(), std::min(offset + 65536, data.size()));
  }
  Result<fs::path> path = cache.Commit(std::move(*pending));
  ASSERT_TRUE(path.ok()) << path.error().message;

  EXPECT_EQ(path->filename(), sha);
  EXPECT_EQ(cache.Find(sha), *path);
  EXPECT_EQ(cache.Find(sha, data.size()), *path);
  EXPECT_EQ(ReadFile(*path), data);
  EXPECT_EQ(ModeOf(*path), 0555u);
  EXPECT_EQ(cache.TotalBytes(), data.size());
  EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
}

TEST_F(BlobCacheTest, EmptyBlob) {
  BlobCache cache = OpenCache();
  Result<fs::path> path = Put(cache, "");
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(cache.Find(Sha256Hex(""), 0), *path);
  EXPECT_EQ(ReadFile(*path), "");
}

TEST_F(BlobCacheTest, WrongHashIsRejectedAndLeavesNothing) {
  BlobCache cache = OpenCache();
  const std::string claimed = Sha256Hex("what the coordinator promised");
  const std::string data = "what arrived instead";
  Result<PendingBlob> pending = cache.Begin(claimed, data.size());
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(pending->Write(0, data).ok());
  Result<fs::path> path = cache.Commit(std::move(*pending));
  ASSERT_FALSE(path.ok());
  EXPECT_EQ(path.error().message, "hash mismatch for " + claimed + ": got " + Sha256Hex(data));
  EXPECT_EQ(cache.Find(claimed), std::nullopt);
  EXPECT_TRUE(FilesUnder(CacheDir() / "blobs").empty());
  EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
}

TEST_F(BlobCacheTest, IncompleteDownloadIsRejectedAndLeavesNothing) {
  BlobCache cache = OpenCache();
  const std::string data = Content(1000, 2);
  Result<PendingBlob> pending = cache.Begin(Sha256Hex(data), data.size());
  ASSERT_TRUE(pending.ok());
  ASSERT_TRUE(pending->Write(0, std::string_view(data).substr(0, 999)).ok());
  Result<fs::path> path = cache.Commit(std::move(*pending));
  ASSERT_FALSE(path.ok());
  EXPECT_THAT(path.error().message, HasSubstr("incomplete"));
  EXPECT_TRUE(FilesUnder(CacheDir() / "blobs").empty());
  EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
}

TEST_F(BlobCacheTest, WritePastExpectedSizeOrWithAGapIsAnError) {
  BlobCache cache = OpenCache();
  const std::string data = "0123456789";
  Result<PendingBlob> pending = cache.Begin(Sha256Hex(data), data.size());
  ASSERT_TRUE(pending.ok());
  EXPECT_FALSE(pending->Write(0, data + "x").ok());
  EXPECT_FALSE(pending->Write(UINT64_MAX, "x").ok());  // no overflow in offset + size
  EXPECT_FALSE(pending->Write(11, "").ok());
  EXPECT_FALSE(pending->Write(5, "56789").ok());  // a gap: nothing written yet
  EXPECT_EQ(pending->written(), 0u);
  ASSERT_TRUE(pending->Write(0, "01234").ok());
  ASSERT_TRUE(pending->Write(3, "34567").ok());  // overlapping rewrite (a retransmit)
  EXPECT_EQ(pending->written(), 8u);
  EXPECT_FALSE(pending->Write(8, "890").ok());
  ASSERT_TRUE(pending->Write(8, "89").ok());
  EXPECT_FALSE(pending->Write(10, "x").ok());
  EXPECT_TRUE(pending->Write(10, "").ok());
  Result<fs::path> path = cache.Commit(std::move(*pending));
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(ReadFile(*path), data);
}

TEST_F(BlobCacheTest, UncommittedDownloadLeavesNoTempFile) {
  BlobCache cache = OpenCache();
  const std::string data = Content(5000, 3);
  fs::path temp;
  {
    Result<PendingBlob> pending = cache.Begin(Sha256Hex(data), data.size());
    ASSERT_TRUE(pending.ok());
    ASSERT_TRUE(pending->Write(0, std::string_view(data).substr(0, 100)).ok());
    temp = pending->temp_path();
    EXPECT_EQ(temp.parent_path(), CacheDir() / "tmp");
    EXPECT_TRUE(fs::exists(temp));

    PendingBlob moved(std::move(*pending));  // the moved-from one must not delete it
    EXPECT_FALSE(pending->valid());
    pending->Discard();
    EXPECT_TRUE(fs::exists(temp));
    EXPECT_EQ(moved.written(), 100u);
  }
  EXPECT_FALSE(fs::exists(temp));
  EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
  EXPECT_EQ(cache.Find(Sha256Hex(data)), std::nullopt);
}

TEST_F(BlobCacheTest, EvictsLeastRecentlyUsedFirstAndRespectsKeep) {
  std::vector<std::string> shas;
  {
    BlobCache big = OpenCache();
    for (int i = 0; i < 5; ++i) {
      const std::string data = Content(100, static_cast<char>('a' + i));
      Result<fs::path> path = Put(big, data);
      ASSERT_TRUE(path.ok()) << path.error().message;
      SetMtime(*path, 1'000'000'000 + i);  // blob 0 is the oldest
      shas.push_back(Sha256Hex(data));
    }
  }
  BlobCache cache = OpenCache(300);
  ASSERT_EQ(cache.TotalBytes(), 500u);
  ASSERT_TRUE(cache.Find(shas[0]).has_value());  // now the most recently used

  EXPECT_EQ(cache.Evict({shas[1]}), 200u);  // skips 1 (kept), deletes 2 and 3, then fits
  EXPECT_EQ(cache.TotalBytes(), 300u);
  EXPECT_TRUE(cache.Find(shas[0]).has_value());
  EXPECT_TRUE(cache.Find(shas[1]).has_value());
  EXPECT_FALSE(cache.Find(shas[2]).has_value());
  EXPECT_FALSE(cache.Find(shas[3]).has_value());
  EXPECT_TRUE(cache.Find(shas[4]).has_value());
  EXPECT_EQ(cache.Evict(), 0u);  // within the bound: nothing to do
}

TEST_F(BlobCacheTest, CommitEvictsOldBlobsButNeverTheNewOne) {
  BlobCache cache = OpenCache(250);
  const std::string old_data = Content(100, 'o');
  Result<fs::path> old_path = Put(cache, old_data);
  ASSERT_TRUE(old_path.ok());
  SetMtime(*old_path, 1'000'000'000);
  const std::string mid_data = Content(100, 'm');
  Result<fs::path> mid_path = Put(cache, mid_data);
  ASSERT_TRUE(mid_path.ok());
  SetMtime(*mid_path, 1'000'000'001);

  const std::string new_data = Content(100, 'n');
  ASSERT_TRUE(Put(cache, new_data).ok());
  EXPECT_FALSE(cache.Find(Sha256Hex(old_data)).has_value());
  EXPECT_TRUE(cache.Find(Sha256Hex(mid_data)).has_value());
  EXPECT_TRUE(cache.Find(Sha256Hex(new_data)).has_value());

  // Larger than the whole bound: everything else goes, the new blob stays.
  const std::string huge = Content(400, 'h');
  Result<fs::path> huge_path = Put(cache, huge);
  ASSERT_TRUE(huge_path.ok());
  EXPECT_EQ(cache.Find(Sha256Hex(huge)), *huge_path);
  EXPECT_EQ(cache.TotalBytes(), 400u);
}

TEST_F(BlobCacheTest, EvictRemovesStaleTempFilesOnly) {
  BlobCache cache = OpenCache();
  const std::string data = Content(10, 's');
  const fs::path stale = CacheDir() / "tmp" / (Sha256Hex(data) + ".999999.0");
  WriteFile(stale, "left by a crashed worker");
  SetMtime(stale, ::time(nullptr) - 2 * kStaleTempSeconds);
  Result<PendingBlob> live = cache.Begin(Sha256Hex(data), data.size());
  ASSERT_TRUE(live.ok());

  EXPECT_EQ(cache.Evict(), 0u);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live->temp_path()));
  ASSERT_TRUE(live->Write(0, data).ok());
  EXPECT_TRUE(cache.Commit(std::move(*live)).ok());
}

TEST_F(BlobCacheTest, FindWithWrongExpectedSizeDeletesTheEntry) {
  BlobCache cache = OpenCache();
  const std::string data = Content(1234, 'w');
  const std::string sha = Sha256Hex(data);
  Result<fs::path> path = Put(cache, data);
  ASSERT_TRUE(path.ok());
  EXPECT_EQ(cache.Find(sha, data.size()), *path);
  EXPECT_EQ(cache.Find(sha, data.size() + 1), std::nullopt);
  EXPECT_FALSE(fs::exists(*path));
  EXPECT_EQ(cache.Find(sha), std::nullopt);
  EXPECT_EQ(cache.Find(sha, data.size()), std::nullopt);

  // A truncated entry (e.g. a crash on a filesystem that lost the data) is replaced by a refetch.
  ASSERT_TRUE(Put(cache, data).ok());
  fs::permissions(*path, fs::perms::owner_write, fs::perm_options::add);
  fs::resize_file(*path, 0);
  EXPECT_EQ(cache.Find(sha, data.size()), std::nullopt);
  EXPECT_FALSE(fs::exists(*path));
}

TEST_F(BlobCacheTest, InvalidShaStringsAreRefused) {
  BlobCache cache = OpenCache();
  const std::string valid = Sha256Hex("x");
  std::string upper = valid;
  std::transform(upper.begin(), upper.end(), upper.begin(), [](char c) {
    return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  });
  const std::vector<std::string> bad = {"../x",
                                        upper,
                                        "abc",
                                        "",
                                        valid.substr(0, 63),
                                        valid + "0",
                                        "../" + valid.substr(3),
                                        valid.substr(0, 32) + "/" + valid.substr(33),
                                        valid.substr(0, 63) + "g"};
  for (const std::string& sha : bad) {
    EXPECT_EQ(cache.Find(sha), std::nullopt) << sha;
    EXPECT_EQ(cache.Find(sha, 1), std::nullopt) << sha;
    EXPECT_FALSE(cache.Begin(sha, 1).ok()) << sha;
  }
  EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
  EXPECT_TRUE(cache.Begin(valid, 1).ok());
}

TEST_F(BlobCacheTest, FindIgnoresNonRegularEntries) {
  BlobCache cache = OpenCache();
  const std::string sha = Sha256Hex("dir");
  const fs::path path = CacheDir() / "blobs" / sha.substr(0, 2) / sha;
  fs::create_directories(path);
  EXPECT_EQ(cache.Find(sha), std::nullopt);
  EXPECT_EQ(cache.Find(sha, 0), std::nullopt);
  EXPECT_TRUE(fs::is_directory(path));  // not ours: left alone
  EXPECT_EQ(cache.TotalBytes(), 0u);
}

TEST_F(BlobCacheTest, OpenCreatesTheDirectoryWithParents) {
  const fs::path dir = tmp_.path() / "a" / "b" / "cache";
  Result<BlobCache> cache = BlobCache::Open({dir, 1000});
  ASSERT_TRUE(cache.ok()) << cache.error().message;
  EXPECT_EQ(cache->dir(), dir);
  EXPECT_TRUE(fs::is_directory(dir / "blobs"));
  EXPECT_TRUE(fs::is_directory(dir / "tmp"));
  EXPECT_EQ(cache->TotalBytes(), 0u);
}

TEST_F(BlobCacheTest, OpenOnAnUnusablePathIsAnError) {
  // A path under a regular file fails even for root.
  WriteFile(tmp_.path() / "afile", "not a directory");
  const fs::path dir = tmp_.path() / "afile" / "cache";
  Result<BlobCache> cache = BlobCache::Open({dir, 1000});
  ASSERT_FALSE(cache.ok());
  EXPECT_THAT(cache.error().message, HasSubstr(dir.string()));
  EXPECT_THAT(cache.error().message, HasSubstr(std::generic_category().message(ENOTDIR)));
}

TEST_F(BlobCacheTest, TwoCachesCommittingTheSameBlobConcurrentlyBothSucceed) {
  for (int round = 0; round < 10; ++round) {
    const std::string data = Content(1 << 20, static_cast<char>(round));
    const std::string sha = Sha256Hex(data);
    BlobCache first = OpenCache();
    BlobCache second = OpenCache();
    Result<fs::path> results[2] = {Error{"not run"}, Error{"not run"}};
    std::latch start(2);
    auto worker = [&](BlobCache* cache, Result<fs::path>* result) {
      start.arrive_and_wait();
      *result = Put(*cache, data, 100'000);
    };
    std::thread a(worker, &first, &results[0]);
    std::thread b(worker, &second, &results[1]);
    a.join();
    b.join();
    ASSERT_TRUE(results[0].ok()) << results[0].error().message;
    ASSERT_TRUE(results[1].ok()) << results[1].error().message;
    EXPECT_EQ(*results[0], *results[1]);
    EXPECT_EQ(ReadFile(*results[0]), data);
    EXPECT_EQ(ModeOf(*results[0]), 0555u);
    EXPECT_EQ(first.Find(sha, data.size()), *results[0]);
    EXPECT_TRUE(FilesUnder(CacheDir() / "tmp").empty());
  }
  EXPECT_EQ(FilesUnder(CacheDir() / "blobs").size(), 10u);
}

// The bytes of the blobs actually on disk, counted by the test itself.
uint64_t BytesUnder(const fs::path& dir) {
  uint64_t total = 0;
  for (const fs::path& file : FilesUnder(dir)) total += fs::file_size(file);
  return total;
}

TEST_F(BlobCacheTest, CommitsWithinTheBoundNeverScanAndTheRecordedSizeIsExact) {
  BlobCache cache = OpenCache();
  EXPECT_EQ(cache.scans(), 1u) << "a cache is measured once, when opened";
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(Put(cache, Content(1000 + i, static_cast<char>(i))).ok());
  }
  ASSERT_TRUE(Put(cache, Content(1000, 0)).ok());  // again: counted once
  EXPECT_EQ(cache.TotalBytes(), BytesUnder(CacheDir() / "blobs"));
  EXPECT_EQ(cache.scans(), 1u);
  // Another object on the directory measures it once too, then reads the record.
  BlobCache again = OpenCache();
  EXPECT_EQ(again.TotalBytes(), BytesUnder(CacheDir() / "blobs"));
  EXPECT_EQ(again.scans(), 1u);
}

TEST_F(BlobCacheTest, ARecordLeftShortByACrashIsCorrectedWhenTheCacheIsOpened) {
  {
    BlobCache cache = OpenCache();
    ASSERT_TRUE(Put(cache, Content(5000, 's')).ok());
  }
  WriteFile(CacheDir() / "lock", "10\n");  // as if a commit's record was never written
  BlobCache cache = OpenCache();
  EXPECT_EQ(cache.TotalBytes(), 5000u);
}

TEST_F(BlobCacheTest, ACommitWithoutARecordEvictsOnlyWhenOverTheBound) {
  BlobCache cache = OpenCache(8'500);  // 8000 bytes are over 90% of it, under all of it
  ASSERT_TRUE(Put(cache, Content(4000, 'x')).ok());
  WriteFile(CacheDir() / "lock", "garbage");  // the record cannot be read
  ASSERT_TRUE(Put(cache, Content(4000, 'y')).ok());
  EXPECT_EQ(BytesUnder(CacheDir() / "blobs"), 8000u) << "under the bound: nothing evicted";
  EXPECT_EQ(cache.TotalBytes(), 8000u) << "and the record is back";
}

TEST_F(BlobCacheTest, AFullCacheScansOncePerTenthOfItsBoundCommitted) {
  constexpr uint64_t kBound = 100'000;
  constexpr int kCommits = 1000;  // 10x the bound, 1000 bytes each
  BlobCache cache = OpenCache(kBound);
  for (int i = 0; i < kCommits; ++i) {
    const std::string data = Content(1000, static_cast<char>(i % 251)) + std::to_string(i);
    ASSERT_TRUE(Put(cache, data.substr(data.size() - 1000)).ok());
    ASSERT_LE(BytesUnder(CacheDir() / "blobs"), kBound) << "after commit " << i;
  }
  EXPECT_EQ(cache.TotalBytes(), BytesUnder(CacheDir() / "blobs"));
  // Scanning on every commit would be 1000; going down to 90% makes it one per ~10 commits.
  EXPECT_LE(cache.scans(), 1u + kCommits / 10) << cache.scans();
  EXPECT_GE(cache.scans(), 1u + (kCommits - 100) / 11) << cache.scans();
}

TEST_F(BlobCacheTest, ARecordThatIsMissingOrGarbageIsMeasuredAgain) {
  {
    BlobCache cache = OpenCache();
    ASSERT_TRUE(Put(cache, Content(5000, 'r')).ok());
  }
  for (const std::string record : {"", "12x\n", "99999999999999999999999\n"}) {
    WriteFile(CacheDir() / "lock", record);
    BlobCache cache = OpenCache();
    EXPECT_EQ(cache.scans(), 1u) << record;
    EXPECT_EQ(cache.TotalBytes(), 5000u) << record;
  }
}

TEST_F(BlobCacheTest, ConcurrentCommitsOfNewAndSameBlobsKeepTheRecordExact) {
  BlobCache first = OpenCache();
  BlobCache second = OpenCache();
  std::latch start(2);
  auto worker = [&](BlobCache* cache, int offset) {
    start.arrive_and_wait();
    for (int i = 0; i < 100; ++i) {
      // Half of each thread's blobs are the other's too.
      EXPECT_TRUE(Put(*cache, Content(3000, static_cast<char>(i % 2 ? i : i + offset))).ok());
    }
  };
  std::thread a(worker, &first, 0);
  std::thread b(worker, &second, 100);
  a.join();
  b.join();
  EXPECT_EQ(first.TotalBytes(), BytesUnder(CacheDir() / "blobs"));
  EXPECT_EQ(FilesUnder(CacheDir() / "blobs").size(), 150u);
}

class BlobCacheConcurrentEvictTest : public BlobCacheTest {
 protected:
  static constexpr int kBlobs = 40;
  static constexpr uint64_t kBlobSize = 1000;
  static constexpr uint64_t kBound = 10'500;

  void SetUp() override {
    BlobCache big = OpenCache();
    for (int i = 0; i < kBlobs; ++i) {
      const std::string data = Content(kBlobSize, static_cast<char>(i));
      Result<fs::path> path = Put(big, data);
      ASSERT_TRUE(path.ok()) << path.error().message;
      SetMtime(*path, 1'000'000'000 + i);
      if (i < 5) keep_.insert(Sha256Hex(data));  // the five oldest, first in line to go
    }
  }

  // Both evictions together freed exactly the excess, each byte counted once, oldest first, and
  // left the kept blobs (the oldest of all) alone.
  void ExpectEvictedOnce(uint64_t freed) {
    BlobCache cache = OpenCache(kBound);
    EXPECT_EQ(cache.TotalBytes(), 10 * kBlobSize);
    EXPECT_EQ(freed, (kBlobs - 10) * kBlobSize);
    for (const std::string& sha : keep_) EXPECT_TRUE(cache.Find(sha, kBlobSize).has_value()) << sha;
  }

  std::set<std::string> keep_;
};

TEST_F(BlobCacheConcurrentEvictTest, FromTwoThreads) {
  BlobCache first = OpenCache(kBound);
  BlobCache second = OpenCache(kBound);
  uint64_t freed[2] = {0, 0};
  std::latch start(2);
  std::thread a([&] {
    start.arrive_and_wait();
    freed[0] = first.Evict(keep_);
  });
  std::thread b([&] {
    start.arrive_and_wait();
    freed[1] = second.Evict(keep_);
  });
  a.join();
  b.join();
  ExpectEvictedOnce(freed[0] + freed[1]);
}

TEST_F(BlobCacheConcurrentEvictTest, FromTwoProcesses) {
  int gate[2];
  int report[2];
  ASSERT_EQ(::pipe2(gate, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(report, O_CLOEXEC), 0);
  std::vector<pid_t> children;
  for (int i = 0; i < 2; ++i) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(gate[1]);
      ::close(report[0]);
      char byte;
      while (::read(gate[0], &byte, 1) < 0 && errno == EINTR) {
      }  // EOF: the parent has opened the gate
      Result<BlobCache> cache = BlobCache::Open({CacheDir(), kBound});
      if (!cache) ::_exit(2);
      uint64_t freed = cache->Evict(keep_);
      ::_exit(::write(report[1], &freed, sizeof freed) == sizeof freed ? 0 : 3);
    }
    children.push_back(pid);
  }
  ::close(gate[0]);
  ::close(report[1]);
  ::close(gate[1]);  // both children start now
  uint64_t total_freed = 0;
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  for (int i = 0; i < 2; ++i) {
    uint64_t freed = 0;
    EXPECT_EQ(::read(report[0], &freed, sizeof freed), static_cast<ssize_t>(sizeof freed));
    total_freed += freed;
  }
  ::close(report[0]);
  ExpectEvictedOnce(total_freed);
}

class LinkOrCopyTest : public BlobCacheTest {
 protected:
  void SetUp() override {
    BlobCache cache = OpenCache();
    data_ = Content(50'000, 'L');
    Result<fs::path> path = Put(cache, data_);
    ASSERT_TRUE(path.ok()) << path.error().message;
    blob_ = *path;
  }

  static struct stat Stat(const fs::path& path) {
    struct stat st {};
    EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
    return st;
  }

  std::string data_;
  fs::path blob_;
};

TEST_F(LinkOrCopyTest, LinksIntoNewParentDirectories) {
  const fs::path dest = tmp_.path() / "job" / "bin" / "deep" / "suite_test";
  Status done = LinkOrCopy(blob_, dest);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(ReadFile(dest), data_);
  EXPECT_EQ(ModeOf(dest), 0555u);
  EXPECT_EQ(Stat(dest).st_ino, Stat(blob_).st_ino);  // same filesystem: a hard link
  EXPECT_EQ(FilesUnder(tmp_.path() / "job"), std::vector<fs::path>{dest});
}

TEST_F(LinkOrCopyTest, ReplacesAnExistingDest) {
  const fs::path dest = tmp_.path() / "job" / "data.bin";
  fs::create_directories(dest.parent_path());
  WriteFile(dest, "stale content");
  ASSERT_TRUE(LinkOrCopy(blob_, dest).ok());
  EXPECT_EQ(ReadFile(dest), data_);
  EXPECT_EQ(ModeOf(dest), 0555u);
  // Again, onto what already is a link to the same file (rename() then does nothing).
  ASSERT_TRUE(LinkOrCopy(blob_, dest).ok());
  EXPECT_EQ(ReadFile(dest), data_);
  EXPECT_EQ(FilesUnder(tmp_.path() / "job"), std::vector<fs::path>{dest});
}

TEST_F(LinkOrCopyTest, CopiesAcrossFilesystemsWithTheSameMode) {
  struct stat shm {};
  if (::stat("/dev/shm", &shm) != 0 || shm.st_dev == Stat(blob_).st_dev) {
    GTEST_SKIP() << "no second filesystem at /dev/shm";
  }
  char pattern[] = "/dev/shm/testfarm-blob-cache-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const fs::path other(pattern);
  const fs::path dest = other / "job" / "lib" / "libsuite.so";
  Status done = LinkOrCopy(blob_, dest);
  const struct stat st = Stat(dest);
  const std::string content = ReadFile(dest);
  const std::vector<fs::path> files = FilesUnder(other);
  std::error_code ec;
  fs::remove_all(other, ec);
  ASSERT_TRUE(done.ok()) << done.error().message;
  EXPECT_EQ(content, data_);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(files, std::vector<fs::path>{dest});
}

TEST_F(LinkOrCopyTest, MissingBlobIsAnErrorAndLeavesNothing) {
  const fs::path dest = tmp_.path() / "job" / "x";
  Status done = LinkOrCopy(tmp_.path() / "no-such-blob", dest);
  ASSERT_FALSE(done.ok());
  EXPECT_THAT(done.error().message, HasSubstr("no-such-blob"));
  EXPECT_TRUE(FilesUnder(tmp_.path() / "job").empty());
}

}  // namespace
}  // namespace testfarm
