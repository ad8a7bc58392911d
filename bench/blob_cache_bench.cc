// The blob cache with many blobs: how long a commit takes when the cache already holds N blobs,
// against the baseline of the same commit followed by a full scan and eviction pass (what every
// commit cost before the cache recorded its size). Both on a cache within its bound, and on a
// full one (every commit pushes it over and something must go).
//
//   blob_cache_bench [DIR] [BLOBS] [COMMITS]    (defaults: a temp dir, 100000, 2000)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "shared/blob_cache.h"
#include "shared/sha256.h"

namespace {

using testfarm::BlobCache;
namespace fs = std::filesystem;

std::string Blob(uint64_t n) {
  return "blob " + std::to_string(n) + " of the blob cache bench, a few dozen bytes\n";
}

bool Put(BlobCache& cache, const std::string& data) {
  auto pending = cache.Begin(testfarm::Sha256Hex(data), data.size());
  if (!pending || !pending->Write(0, data)) return false;
  auto committed = cache.Commit(std::move(*pending));
  if (!committed) std::fprintf(stderr, "commit: %s\n", committed.error().message.c_str());
  return committed.ok();
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Commits `count` new blobs numbered from `*next`, with a full Evict() after each if `scan`.
// Returns the mean milliseconds per commit.
double CommitMs(BlobCache& cache, uint64_t* next, int count, bool scan) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    if (!Put(cache, Blob((*next)++))) std::exit(1);
    if (scan) cache.Evict();
  }
  return Seconds(start) * 1000 / count;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path dir =
      argc > 1 ? fs::path(argv[1])
               : fs::temp_directory_path() / ("testfarm-blob-bench-" + std::to_string(::getpid()));
  const uint64_t blobs = argc > 2 ? std::stoull(argv[2]) : 100000;
  const int commits = argc > 3 ? std::stoi(argv[3]) : 2000;
  fs::remove_all(dir);
  uint64_t next = 0;
  {
    auto cache = BlobCache::Open({dir, 1ull << 40});
    if (!cache) {
      std::fprintf(stderr, "%s\n", cache.error().message.c_str());
      return 1;
    }
    auto start = std::chrono::steady_clock::now();
    while (next < blobs) {
      if (!Put(*cache, Blob(next++))) return 1;
    }
    std::printf("filled %llu blobs (%llu bytes) in %.1f s\n",
                static_cast<unsigned long long>(blobs),
                static_cast<unsigned long long>(cache->TotalBytes()), Seconds(start));
  }
  const int baseline_commits = std::max(1, commits / 20);  // each one scans everything
  {
    auto cache = BlobCache::Open({dir, 1ull << 40});
    double now_ms = CommitMs(*cache, &next, commits, false);
    double before_ms = CommitMs(*cache, &next, baseline_commits, true);
    std::printf(
        "within the bound: commit %.3f ms, with a scan per commit (before) %.3f ms: %.0fx\n",
        now_ms, before_ms, before_ms / now_ms);
  }
  {
    // Full: the bound is what is there now, so every commit goes over it.
    auto sized = BlobCache::Open({dir, 1ull << 40});
    auto cache = BlobCache::Open({dir, sized->TotalBytes()});
    uint64_t scans = cache->scans();
    double now_ms = CommitMs(*cache, &next, commits, false);
    uint64_t made = cache->scans() - scans;
    double before_ms = CommitMs(*cache, &next, baseline_commits, true);
    std::printf(
        "full cache: commit %.3f ms (%llu scans in %d commits), with a scan per commit "
        "(before) %.3f ms: %.0fx\n",
        now_ms, static_cast<unsigned long long>(made), commits, before_ms, before_ms / now_ms);
  }
  fs::remove_all(dir);
  return 0;
}
