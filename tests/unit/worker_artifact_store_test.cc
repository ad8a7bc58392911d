#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <sstream>

#include "shared/sha256.h"
#include "tests/support/temp_dir.h"
#include "worker/artifact_store.h"

namespace testfarm::worker {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

std::string Read(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A coordinator's side, in memory: the files of one suite under `root`, served chunk by chunk.
struct FakeCoordinator {
  std::string root;
  std::map<std::string, std::string> content;  // relative path -> bytes
  std::map<std::string, std::string> by_sha;   // sha -> bytes served (may be tampered with)

  protocol::JobAssign Job(std::vector<std::string> argv) {
    protocol::JobAssign job;
    job.lease = 1;
    job.argv = std::move(argv);
    job.artifact_root = root;
    for (const auto& [path, bytes] : content) {
      std::string sha = Sha256Hex(bytes);
      by_sha[sha] = bytes;
      job.artifacts.push_back({path, sha, bytes.size(), path.starts_with("bin/")});
    }
    return job;
  }
  protocol::Chunk Answer(const protocol::Fetch& fetch) {
    protocol::Chunk chunk;
    chunk.sha256 = fetch.sha256;
    chunk.offset = fetch.offset;
    auto it = by_sha.find(fetch.sha256);
    if (it == by_sha.end()) {
      chunk.error = "unknown blob";
      return chunk;
    }
    chunk.size = it->second.size();
    chunk.data = it->second.substr(fetch.offset, fetch.length);
    return chunk;
  }
  // Answers every request until the store has nothing more to ask; returns the requests made.
  int Serve(ArtifactStore& store) {
    int requests = 0;
    for (auto fetches = store.TakeFetches(); !fetches.empty(); fetches = store.TakeFetches()) {
      for (const protocol::Fetch& fetch : fetches) {
        ++requests;
        store.OnChunk(Answer(fetch));
      }
    }
    return requests;
  }
};

struct Fixture {
  TempDir dir;
  BlobCache cache = *BlobCache::Open({dir.path() / "cache", 1 << 30});
  FakeClock clock;
  ArtifactStoreOptions Options(bool shared_fs = false) {
    ArtifactStoreOptions options;
    options.clock = &clock;
    options.cache = &cache;
    options.shared_fs = shared_fs;
    options.scratch_root = dir.path();
    options.window = 4;
    options.chunk_bytes = 1000;
    return options;
  }
};

TEST(ArtifactStore, ARequestWhoseAnswerWasLostIsAskedAgainAndATwiceAnsweredOneCountsOnce) {
  Fixture f;
  FakeCoordinator coordinator{"/nonexistent/build", {}, {}};
  coordinator.content["bin/t"] = std::string(3'500, 'y');  // 4 chunks of 1000: the whole window
  protocol::JobAssign job = coordinator.Job({"/nonexistent/build/bin/t"});
  ArtifactStore store(f.Options());
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  auto fetches = store.TakeFetches();
  ASSERT_EQ(fetches.size(), 4u);
  EXPECT_EQ(store.NextDeadline(), f.clock.Now() + std::chrono::seconds(30));
  // The answer to the second request is lost; the others arrive.
  for (std::size_t i = 0; i < fetches.size(); ++i) {
    if (i != 1) store.OnChunk(coordinator.Answer(fetches[i]));
  }
  EXPECT_EQ(store.in_flight(), 1u);
  f.clock.Advance(std::chrono::seconds(29));
  EXPECT_TRUE(store.TakeFetches().empty()) << "not yet";
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  f.clock.Advance(std::chrono::seconds(1));
  auto again = store.TakeFetches();
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0], fetches[1]) << "the same bytes, asked again";
  EXPECT_EQ(store.NextDeadline(), f.clock.Now() + std::chrono::seconds(30));
  // Both answers come after all: the second is dropped, not written twice.
  store.OnChunk(coordinator.Answer(fetches[1]));
  store.OnChunk(coordinator.Answer(again[0]));
  EXPECT_EQ(store.in_flight(), 0u);
  EXPECT_FALSE(store.NextDeadline().has_value());
  EXPECT_EQ(store.fetched_bytes(), 3'500u);
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(Read(job.argv[0]), std::string(3'500, 'y'));
}

TEST(ArtifactStore, FetchesInChunksWithinTheWindowAndRunsFromItsOwnCopy) {
  Fixture f;
  FakeCoordinator coordinator{"/nonexistent/build", {}, {}};
  coordinator.content["bin/t"] = std::string(10'500, 'x');
  coordinator.content["lib/libt.so"] = "library";
  coordinator.content["data/in.txt"] = "";
  protocol::JobAssign job =
      coordinator.Job({"/nonexistent/build/bin/t", "--data=/nonexistent/build/data", "/dev/null"});
  job.cwd = "/nonexistent/build/work";
  job.env = {{"DATA", "/nonexistent/build/data/in.txt"}};
  job.library_dirs = {"lib"};
  ArtifactStore store(f.Options());

  auto first = store.Prepare(job);
  EXPECT_EQ(first.status, ArtifactStore::Status::kWaiting);
  auto fetches = store.TakeFetches();
  EXPECT_EQ(fetches.size(), 4u) << "no more than the window in flight";
  EXPECT_TRUE(store.TakeFetches().empty());
  for (const auto& fetch : fetches) store.OnChunk(coordinator.Answer(fetch));
  coordinator.Serve(store);
  EXPECT_EQ(store.in_flight(), 0u);
  EXPECT_EQ(store.fetched_bytes(), 10'500u + 7u);

  auto ready = store.Prepare(job);
  ASSERT_EQ(ready.status, ArtifactStore::Status::kReady) << ready.error;
  ASSERT_NE(job.argv[0], "/nonexistent/build/bin/t");
  const std::string copy = fs::path(job.argv[0]).parent_path().parent_path().string();
  EXPECT_EQ(job.argv[0], copy + "/bin/t");
  EXPECT_EQ(job.argv[1], "--data=/nonexistent/build/data") << "only whole values are paths";
  EXPECT_EQ(job.argv[2], "/dev/null");
  EXPECT_EQ(job.cwd, copy + "/work");
  EXPECT_TRUE(fs::is_directory(job.cwd)) << "the working directory exists in the copy";
  EXPECT_EQ(job.env["DATA"], copy + "/data/in.txt");
  EXPECT_TRUE(job.env["LD_LIBRARY_PATH"].starts_with(copy + "/lib")) << job.env["LD_LIBRARY_PATH"];
  EXPECT_EQ(Read(job.argv[0]), coordinator.content["bin/t"]);
  EXPECT_EQ(Read(copy + "/data/in.txt"), "");
  struct stat st {};
  ASSERT_EQ(::stat(job.argv[0].c_str(), &st), 0);
  EXPECT_NE(st.st_mode & 0100, 0u) << "the executable stays executable";
  // A data file is the test's own copy: writing it leaves the cached blob as it was.
  std::ofstream(copy + "/data/in.txt") << "scribbled";
  auto blob = f.cache.Find(Sha256Hex(""), 0);
  ASSERT_TRUE(blob);
  EXPECT_EQ(Read(*blob), "");

  // A second job of the same suite reuses the copy without fetching anything.
  protocol::JobAssign again = coordinator.Job({"/nonexistent/build/bin/t"});
  EXPECT_EQ(store.Prepare(again).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(again.argv[0], copy + "/bin/t");
  EXPECT_TRUE(store.TakeFetches().empty());

  // Another worker on the same cache finds every blob there: nothing to fetch.
  ArtifactStore other(f.Options());
  protocol::JobAssign third = coordinator.Job({"/nonexistent/build/bin/t"});
  EXPECT_EQ(other.Prepare(third).status, ArtifactStore::Status::kReady);
  EXPECT_TRUE(other.TakeFetches().empty());
}

TEST(ArtifactStore, AJobNamingItsSetWaitsForTheSetsFilesAskedForOnce) {
  Fixture f;
  FakeCoordinator coordinator{"/nonexistent/build", {}, {}};
  coordinator.content["bin/t"] = "the test";
  protocol::JobAssign listed = coordinator.Job({"/nonexistent/build/bin/t"});
  protocol::SetManifest manifest;
  manifest.run = 7;
  manifest.set = 1;
  manifest.root = listed.artifact_root;
  manifest.files = listed.artifacts;
  auto named = [&](uint64_t lease, uint64_t set) {
    protocol::JobAssign job;
    job.lease = lease;
    job.run = 7;
    job.artifact_set = set;
    job.argv = {"/nonexistent/build/bin/t"};
    return job;
  };
  protocol::JobAssign a = named(1, 1);
  protocol::JobAssign b = named(2, 1);
  ArtifactStore store(f.Options());
  EXPECT_EQ(store.Prepare(a).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(store.Prepare(b).status, ArtifactStore::Status::kWaiting);
  auto requests = store.TakeSetRequests();
  ASSERT_EQ(requests.size(), 1u) << "one request for the set, however many jobs name it";
  EXPECT_EQ(requests[0], (protocol::SetRequest{7, 1}));
  EXPECT_TRUE(store.TakeSetRequests().empty());
  EXPECT_EQ(store.NextDeadline(), f.clock.Now() + std::chrono::seconds(30));
  // The answer was lost: asked again after the resend interval.
  f.clock.Advance(std::chrono::seconds(30));
  EXPECT_EQ(store.TakeSetRequests().size(), 1u);
  store.OnSetManifest(manifest);
  store.OnSetManifest(manifest);  // the second answer changes nothing
  EXPECT_TRUE(store.TakeSetRequests().empty());
  EXPECT_FALSE(store.NextDeadline().has_value());

  EXPECT_EQ(store.Prepare(a).status, ArtifactStore::Status::kWaiting) << "its blob is fetched";
  EXPECT_EQ(a.artifacts, listed.artifacts);
  EXPECT_EQ(a.artifact_set, 0u);
  coordinator.Serve(store);
  ASSERT_EQ(store.Prepare(a).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(Read(a.argv[0]), "the test");
  ASSERT_EQ(store.Prepare(b).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(b.argv[0], a.argv[0]) << "the same copy";
  EXPECT_TRUE(store.TakeSetRequests().empty());
  // Later jobs of a known set cost neither a copy of its list nor a digest of it.
  const uint64_t digests = store.digests();
  for (uint64_t lease = 100; lease < 200; ++lease) {
    protocol::JobAssign later = named(lease, 1);
    ASSERT_EQ(store.Prepare(later).status, ArtifactStore::Status::kReady);
    EXPECT_EQ(later.argv[0], a.argv[0]);
    EXPECT_TRUE(later.artifacts.empty()) << "the list stays with the set";
  }
  EXPECT_EQ(store.digests(), digests) << "no digest per job";

  // A set the coordinator cannot name fails its jobs with the reason.
  protocol::JobAssign c = named(3, 2);
  EXPECT_EQ(store.Prepare(c).status, ArtifactStore::Status::kWaiting);
  ASSERT_EQ(store.TakeSetRequests().size(), 1u);
  store.OnSetManifest(protocol::SetManifest{.run = 7,
                                            .set = 2,
                                            .root = {},
                                            .files = {},
                                            .library_dirs = {},
                                            .error = "the run has ended"});
  auto failed = store.Prepare(c);
  EXPECT_EQ(failed.status, ArtifactStore::Status::kFailed);
  EXPECT_NE(failed.error.find("the run has ended"), std::string::npos) << failed.error;
  // An answer nobody asked for is dropped.
  protocol::SetManifest unasked;
  unasked.run = 8;
  unasked.set = 1;
  unasked.error = "not asked";
  store.OnSetManifest(unasked);
  protocol::JobAssign d = named(4, 1);
  d.run = 8;
  EXPECT_EQ(store.Prepare(d).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(store.TakeSetRequests().size(), 1u);
}

TEST(ArtifactStore, ABlobThatFailsVerificationIsFetchedAgainAndNeverRun) {
  Fixture f;
  FakeCoordinator coordinator{"/nonexistent/b", {{"bin/t", "the real bytes"}}, {}};
  protocol::JobAssign job = coordinator.Job({"/nonexistent/b/bin/t"});
  const std::string sha = job.artifacts[0].sha256;
  ArtifactStore store(f.Options());
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);

  // Corrupted once, then right: the second attempt is used.
  coordinator.by_sha[sha] = "the fake bytes";
  for (const auto& fetch : store.TakeFetches()) store.OnChunk(coordinator.Answer(fetch));
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting) << "fetching again";
  coordinator.by_sha[sha] = "the real bytes";
  coordinator.Serve(store);
  auto ready = store.Prepare(job);
  ASSERT_EQ(ready.status, ArtifactStore::Status::kReady) << ready.error;
  EXPECT_EQ(Read(job.argv[0]), "the real bytes");

  // Always corrupted: given up after three attempts, with the reason.
  FakeCoordinator liar{"/nonexistent/c", {{"bin/u", "good"}}, {}};
  protocol::JobAssign doomed = liar.Job({"/nonexistent/c/bin/u"});
  liar.by_sha[doomed.artifacts[0].sha256] = "evil";
  ASSERT_EQ(store.Prepare(doomed).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(liar.Serve(store), 3);
  auto failed = store.Prepare(doomed);
  EXPECT_EQ(failed.status, ArtifactStore::Status::kFailed);
  EXPECT_NE(failed.error.find("cannot fetch bin/u"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find("hash mismatch"), std::string::npos) << failed.error;
  EXPECT_NE(failed.error.find("3 attempts"), std::string::npos) << failed.error;
  EXPECT_FALSE(f.cache.Find(doomed.artifacts[0].sha256)) << "a bad blob never enters the cache";
}

TEST(ArtifactStore, ABlobTheCoordinatorCannotServeFailsTheJobWithItsReason) {
  Fixture f;
  FakeCoordinator coordinator{"/nonexistent/d", {{"bin/t", "bytes"}}, {}};
  protocol::JobAssign job = coordinator.Job({"/nonexistent/d/bin/t"});
  coordinator.by_sha.clear();
  ArtifactStore store(f.Options());
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  coordinator.Serve(store);
  auto failed = store.Prepare(job);
  EXPECT_EQ(failed.status, ArtifactStore::Status::kFailed);
  EXPECT_NE(failed.error.find("the coordinator says: unknown blob"), std::string::npos)
      << failed.error;
}

TEST(ArtifactStore, OnASharedFilesystemMatchingFilesRunInPlaceAndStaleOnesAreFetched) {
  Fixture f;
  fs::path root = f.dir.path() / "build";
  fs::create_directories(root / "bin");
  std::ofstream(root / "bin" / "t") << "version 1";
  FakeCoordinator coordinator{root.string(), {{"bin/t", "version 1"}}, {}};
  protocol::JobAssign job = coordinator.Job({(root / "bin" / "t").string()});
  ArtifactStore store(f.Options(/*shared_fs=*/true));
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(job.argv[0], (root / "bin" / "t").string()) << "runs in place";

  // The file on this machine is rebuilt: the coordinator's version is fetched instead.
  std::ofstream(root / "bin" / "t") << "version 2";
  FakeCoordinator rebuilt{root.string(), {{"bin/t", "version 3"}}, {}};
  protocol::JobAssign stale = rebuilt.Job({(root / "bin" / "t").string()});
  EXPECT_EQ(store.Prepare(stale).status, ArtifactStore::Status::kWaiting);
  rebuilt.Serve(store);
  ASSERT_EQ(store.Prepare(stale).status, ArtifactStore::Status::kReady);
  EXPECT_NE(stale.argv[0], (root / "bin" / "t").string());
  EXPECT_EQ(Read(stale.argv[0]), "version 3");

  // Without a cache (the in-process worker) a mismatch is an error, never a stale run.
  ArtifactStoreOptions no_cache = f.Options(true);
  no_cache.cache = nullptr;
  ArtifactStore local(no_cache);
  protocol::JobAssign again = rebuilt.Job({(root / "bin" / "t").string()});
  auto failed = local.Prepare(again);
  EXPECT_EQ(failed.status, ArtifactStore::Status::kFailed);
  EXPECT_NE(failed.error.find("do not match the coordinator's"), std::string::npos) << failed.error;
}

// Waits (bounded) for the OffLoop's work and runs what it hands back to the loop.
void RunOffLoopWork(OffLoop& off) {
  while (off.outstanding() > 0) {
    pollfd p{off.fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 10000), 1) << "the off-loop work did not finish in 10 s";
    off.RunFinished();
  }
}

TEST(ArtifactStore, WithAnOffLoopBlobsAreVerifiedAndCommittedAndCopiesMadeThere) {
  Fixture f;
  OffLoop off;
  FakeCoordinator coordinator{"/nonexistent/build", {}, {}};
  coordinator.content["bin/t"] = std::string(2'500, 'o');
  coordinator.content["data/empty"] = "";
  protocol::JobAssign job = coordinator.Job({"/nonexistent/build/bin/t"});
  ArtifactStoreOptions options = f.Options();
  options.off_loop = &off;
  ArtifactStore store(options);
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  // The cache is looked up there first: nothing to fetch until the loop hears the answer.
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(off.outstanding(), 2u) << "each blob looked up once";
  EXPECT_TRUE(store.TakeFetches().empty());
  RunOffLoopWork(off);
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  coordinator.Serve(store);
  // Every byte is here, but nothing is committed until the loop runs what the OffLoop finished.
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(f.cache.TotalBytes(), 0u);
  EXPECT_GE(off.outstanding(), 1u);
  RunOffLoopWork(off);
  EXPECT_EQ(f.cache.TotalBytes(), 2'500u);
  // The suite's own copy (links, and copies of data files) is made there too.
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting);
  EXPECT_EQ(off.outstanding(), 1u) << "made once";
  RunOffLoopWork(off);
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(Read(job.argv[0]), std::string(2'500, 'o'));
}

TEST(ArtifactStore, WithAnOffLoopFilesAtTheCoordinatorsPathsAreHashedThere) {
  Fixture f;
  OffLoop off;
  fs::path root = f.dir.path() / "build";
  fs::create_directories(root / "bin");
  std::ofstream(root / "bin" / "t") << "in place";
  FakeCoordinator coordinator{root.string(), {{"bin/t", "in place"}}, {}};
  protocol::JobAssign job = coordinator.Job({(root / "bin" / "t").string()});
  ArtifactStoreOptions options = f.Options(/*shared_fs=*/true);
  options.off_loop = &off;
  ArtifactStore store(options);
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting) << "being hashed";
  EXPECT_EQ(store.Prepare(job).status, ArtifactStore::Status::kWaiting) << "hashed once";
  EXPECT_EQ(off.outstanding(), 1u);
  RunOffLoopWork(off);
  ASSERT_EQ(store.Prepare(job).status, ArtifactStore::Status::kReady);
  EXPECT_EQ(job.argv[0], (root / "bin" / "t").string()) << "runs in place";
  EXPECT_TRUE(store.TakeFetches().empty());
}

TEST(RelocateJob, UnderTheRootDirectoryOnlyTheShippedFilesMove) {
  protocol::JobAssign job;
  job.artifact_root = "/";
  job.artifacts = {{"opt/t", std::string(64, 'a'), 1, true}};
  job.argv = {"/opt/t", "/dev/null", "/opt/other"};
  RelocateJob(job, "/w/s");
  EXPECT_EQ(job.argv, (std::vector<std::string>{"/w/s/opt/t", "/dev/null", "/opt/other"}));
}

TEST(ArtifactSetId, DependsOnRootPathsContentAndMode) {
  protocol::JobAssign a;
  a.artifact_root = "/b";
  a.artifacts = {{"t", std::string(64, 'a'), 1, true}};
  protocol::JobAssign b = a;
  EXPECT_EQ(ArtifactSetId(a), ArtifactSetId(b));
  b.artifacts[0].executable = false;
  EXPECT_NE(ArtifactSetId(a), ArtifactSetId(b));
  b = a;
  b.artifacts[0].sha256 = std::string(64, 'b');
  EXPECT_NE(ArtifactSetId(a), ArtifactSetId(b));
  b = a;
  b.artifact_root = "/c";
  EXPECT_NE(ArtifactSetId(a), ArtifactSetId(b));
}

}  // namespace
}  // namespace testfarm::worker
