#include "worker/artifact_store.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>

#include "shared/duration.h"
#include "shared/sha256.h"

namespace testfarm::worker {

namespace fs = std::filesystem;

namespace {

int64_t Nanos(const struct timespec& t) {
  return int64_t{t.tv_sec} * 1000000000 + t.tv_nsec;
}

std::string Short(const std::string& sha256) {
  return sha256.substr(0, 12);
}

}  // namespace

std::string ArtifactSetId(const std::string& root,
                          const std::vector<protocol::ArtifactFile>& files) {
  Sha256 hash;
  hash.Update(root);
  for (const protocol::ArtifactFile& file : files) {
    hash.Update(std::string_view("\0", 1));
    hash.Update(file.path);
    hash.Update(std::string_view("\0", 1));
    hash.Update(file.sha256);
    hash.Update(file.executable ? "x" : "-");
  }
  return hash.HexDigest();
}

void RelocateJob(protocol::JobAssign& job, const std::string& dir,
                 const std::vector<protocol::ArtifactFile>& shipped) {
  const std::string& root = job.artifact_root;
  // Only a set rooted at "/" needs its files' paths (a job's cost must not grow with its set).
  std::set<std::string> files;
  if (root == "/") {
    for (const protocol::ArtifactFile& file : shipped) files.insert("/" + file.path);
  }
  // Under "/" only the shipped files themselves move: "/dev/null" must stay what it is.
  auto relocate = [&](std::string& value) {
    if (value == root) {
      value = dir;
    } else if (root != "/" && value.starts_with(root + "/")) {
      value = dir + value.substr(root.size());
    } else if (root == "/" && files.contains(value)) {
      value = dir + value;
    }
  };
  for (std::string& arg : job.argv) relocate(arg);
  relocate(job.cwd);
  for (auto& [name, value] : job.env) relocate(value);
  if (!job.library_dirs.empty()) {
    std::string path;
    for (const std::string& lib : job.library_dirs) {
      path += (path.empty() ? "" : ":") + (lib == "." ? dir : dir + "/" + lib);
    }
    std::string inherited;
    if (auto it = job.env.find("LD_LIBRARY_PATH"); it != job.env.end()) {
      inherited = it->second;
    } else if (const char* env = std::getenv("LD_LIBRARY_PATH")) {
      inherited = env;
    }
    job.env["LD_LIBRARY_PATH"] = inherited.empty() ? path : path + ":" + inherited;
  }
}

ArtifactStore::ArtifactStore(ArtifactStoreOptions options) : options_(std::move(options)) {
  static const SteadyClock kSteady;
  if (options_.clock == nullptr) options_.clock = &kSteady;
}

void ArtifactStore::Later(OffLoop::Work work) {
  if (options_.off_loop != nullptr) {
    options_.off_loop->Post(std::move(work));
  } else if (OffLoop::Done done = work()) {
    done();
  }
}

ArtifactStore::Match ArtifactStore::MatchesAtRoot(const protocol::JobAssign& job) {
  bool hashing = false;
  for (const protocol::ArtifactFile& file : job.artifacts) {
    fs::path path = fs::path(job.artifact_root) / file.path;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_size) != file.size) {
      return Match::kNo;
    }
    Seen now{st.st_dev, st.st_ino, st.st_size, Nanos(st.st_mtim), Nanos(st.st_ctim), {}};
    auto seen = seen_.find(path);
    if (seen == seen_.end() || seen->second.device != now.device ||
        seen->second.inode != now.inode || seen->second.size != now.size ||
        seen->second.mtime_ns != now.mtime_ns || seen->second.ctime_ns != now.ctime_ns) {
      // Hashed once per version of the file, off the loop: it may be gigabytes.
      if (hashing_.insert(path).second) {
        Later([this, path, now]() -> OffLoop::Done {
          auto digest = Sha256File(path);
          std::string sha256 = digest ? *digest : std::string();
          std::string error = digest ? std::string() : digest.error().message;
          return [this, path, now, sha256, error] {
            if (!error.empty()) {
              spdlog::warn("cannot hash {} ({}); the coordinator's copy is fetched instead",
                           path.string(), error);
            }
            hashing_.erase(path);
            seen_[path] = now;
            seen_[path].sha256 = sha256;
          };
        });
      }
      if (hashing_.contains(path)) {
        hashing = true;
        continue;
      }
      seen = seen_.find(path);  // hashed at once (no OffLoop)
    }
    if (seen->second.sha256 != file.sha256) {
      if (!seen->second.sha256.empty()) {
        spdlog::warn("{} differs from the coordinator's copy (sha256 {} here, {} there)",
                     path.string(), Short(seen->second.sha256), Short(file.sha256));
      }
      return Match::kNo;
    }
  }
  return hashing ? Match::kHashing : Match::kYes;
}

testfarm::Status ArtifactStore::Stage(const std::string& sha256, const fs::path& blob) {
  // A link of our own: the cache may evict its entry (another worker sharing it, or a later
  // blob of ours) while this run still needs the file.
  fs::path staged = work_.path() / "staging" / sha256;
  auto linked = LinkOrCopy(blob, staged);
  if (!linked) return linked.error();
  staged_[sha256] = staged;
  return Ok{};
}

std::optional<fs::path> ArtifactStore::Staged(const protocol::ArtifactFile& file,
                                              std::string* error) {
  if (auto it = staged_.find(file.sha256); it != staged_.end()) return it->second;
  if (auto it = downloads_.find(file.sha256); it != downloads_.end()) {
    if (!it->second.error.empty()) *error = it->second.error;
    return std::nullopt;
  }
  if (finding_.contains(file.sha256)) return std::nullopt;
  // Looked up off the loop: the lookup waits while another worker sharing the cache evicts.
  finding_.insert(file.sha256);
  BlobCache* cache = options_.cache;
  Later([this, cache, file]() -> OffLoop::Done {
    std::optional<fs::path> cached = cache->Find(file.sha256, file.size);
    return [this, file, cached] {
      finding_.erase(file.sha256);
      // Evicted by another worker sharing the cache since Find: fetch it like any other miss.
      if (cached && Stage(file.sha256, *cached)) return;
      Download& download = downloads_[file.sha256];
      download.size = file.size;
      download.path = file.path;
      Restart(file.sha256, download);
    };
  });
  if (auto it = staged_.find(file.sha256); it != staged_.end()) return it->second;  // no OffLoop
  if (auto it = downloads_.find(file.sha256); it != downloads_.end() && !it->second.error.empty()) {
    *error = it->second.error;
  }
  return std::nullopt;
}

void ArtifactStore::Restart(const std::string& sha256, Download& download) {
  ++download.attempts;
  download.next_offset = 0;
  download.held.clear();
  auto pending = options_.cache->Begin(sha256, download.size);
  if (!pending) {
    download.error = "cannot store " + download.path + ": " + pending.error().message;
    return;
  }
  download.pending = std::move(*pending);
  if (download.size == 0) {  // nothing to fetch
    StartCommit(sha256, download);
    return;
  }
  queue_.push_back(sha256);
}

void ArtifactStore::StartCommit(const std::string& sha256, Download& download) {
  // Hashing, fdatasync and any eviction take as long as the blob is large: not on the loop.
  CommitOffLoop(
      *options_.cache, options_.off_loop, std::move(download.pending), {},
      [this, sha256](Result<fs::path> committed) { Committed(sha256, std::move(committed)); });
}

void ArtifactStore::GiveUp(const std::string& sha256, Download& download, const std::string& why) {
  download.error = "cannot fetch " + download.path + " (sha256 " + Short(sha256) + "): " + why;
  download.pending.Discard();
  // Its other requests are not waited for (nor asked again).
  std::erase_if(in_flight_, [&](const auto& entry) { return entry.first.first == sha256; });
  spdlog::error("{}", download.error);
}

void ArtifactStore::Committed(const std::string& sha256, Result<fs::path> committed) {
  auto it = downloads_.find(sha256);
  if (it == downloads_.end()) return;
  Download& download = it->second;
  if (committed) {
    testfarm::Status staged = Stage(sha256, *committed);
    if (staged) {
      downloads_.erase(it);
      return;
    }
    const std::string& error = staged.error().message;
    // Gone again before we could link it (evicted by a worker sharing the cache): fetch again.
    if (download.attempts >= options_.max_attempts) return GiveUp(sha256, download, error);
    spdlog::warn("{} ({}): {}; fetching it again", download.path, Short(sha256), error);
    Restart(sha256, download);
    return;
  }
  // A blob that does not hash to its name is discarded and fetched again, never run.
  if (download.attempts >= options_.max_attempts) {
    return GiveUp(
        sha256, download,
        committed.error().message + " (" + std::to_string(download.attempts) + " attempts)");
  }
  spdlog::warn("{} ({}): {}; fetching it again", download.path, Short(sha256),
               committed.error().message);
  Restart(sha256, download);
}

namespace {

// A suite's own copy: where each staged blob goes in it, and whether as a copy.
struct Layout {
  fs::path dir;
  struct Placement {
    fs::path blob;
    fs::path dest;
    bool copy = false;
  };
  std::vector<Placement> files;
  std::optional<fs::path> cwd;  // the test's working directory, when inside the copy
};

// Builds the copy. Off the loop: a data file copied may be gigabytes.
Result<fs::path> Materialize(const Layout& layout) {
  for (const Layout::Placement& file : layout.files) {
    // Executables and libraries are linked (tests do not write those); data files are copies of
    // their own, writable like the originals, so a test that writes one (as root, say) can
    // never change the cached blob that other runs and workers trust by its hash.
    auto made = file.copy ? LinkOrCopy(file.blob, file.dest, true, mode_t{0644})
                          : LinkOrCopy(file.blob, file.dest);
    if (!made) return made.error();
  }
  std::error_code ec;
  fs::create_directories(layout.dir, ec);
  // The test's working directory exists in the copy even when no shipped file is in it.
  if (layout.cwd) fs::create_directories(*layout.cwd, ec);
  if (ec) return Error{"cannot create " + layout.dir.string() + ": " + ec.message()};
  return layout.dir;
}

}  // namespace

ArtifactStore::Prepared ArtifactStore::Prepare(protocol::JobAssign& job) {
  // A job naming a known set takes the set's root and library dirs, and, only when its suite's
  // copy is not made yet, its file list: the usual job costs neither a copy nor a digest of it.
  const std::vector<protocol::ArtifactFile>* files = &job.artifacts;
  std::string id;
  if (job.artifact_set != 0) {
    SetKey key{job.run, job.artifact_set};
    auto [it, added] = sets_.try_emplace(key);
    if (added) unanswered_.insert(key);  // asked for by TakeSetRequests
    const KnownSet& known = it->second;
    if (!known.manifest) return {Status::kWaiting, {}};
    const protocol::SetManifest& manifest = *known.manifest;
    if (!manifest.error.empty()) {
      return {Status::kFailed,
              "the coordinator cannot say which files it needs: " + manifest.error};
    }
    job.artifact_root = manifest.root;
    job.library_dirs = manifest.library_dirs;
    files = &manifest.files;
    id = known.id;
  }
  if (files->empty()) return {};
  if (id.empty()) {
    id = ArtifactSetId(job.artifact_root, job.artifacts);
    ++digests_;
  }
  if (auto it = suites_.find(id); it != suites_.end()) {
    if (!it->second.error.empty()) return {Status::kFailed, it->second.error};
    if (!it->second.dir.empty()) RelocateJob(job, it->second.dir.string(), *files);
    return {};
  }
  if (job.artifact_set != 0) {  // the suite is new here: the rest needs the list in the job
    job.artifacts = *files;
    job.artifact_set = 0;
  }
  if (options_.shared_fs) {
    Match match = MatchesAtRoot(job);
    if (match == Match::kHashing) return {Status::kWaiting, {}};
    if (match == Match::kYes) {
      suites_[id] = Suite{};
      return {};
    }
  }
  if (options_.cache == nullptr) {
    std::string error = "the files under " + job.artifact_root +
                        " do not match the coordinator's (changed since the run started?)";
    suites_[id] = Suite{{}, error};
    return {Status::kFailed, error};
  }
  if (!work_.valid() && work_error_.empty()) {
    auto created = ScratchDir::Create(options_.scratch_root, "testfarm-suites-");
    if (created) {
      work_ = std::move(*created);
    } else {
      work_error_ = created.error().message;
    }
  }
  if (!work_error_.empty()) return {Status::kFailed, work_error_};
  bool missing = false;
  for (const protocol::ArtifactFile& file : job.artifacts) {
    std::string error;
    if (!Staged(file, &error)) missing = true;
    if (!error.empty()) {
      suites_[id] = Suite{{}, error};
      return {Status::kFailed, error};
    }
  }
  if (missing || materializing_.contains(id)) return {Status::kWaiting, {}};
  Layout layout;
  layout.dir = work_.path() / id.substr(0, 16);
  for (const protocol::ArtifactFile& file : job.artifacts) {
    layout.files.push_back({staged_.at(file.sha256), layout.dir / file.path, !file.executable});
  }
  if (job.cwd == job.artifact_root || job.cwd.starts_with(job.artifact_root + "/")) {
    layout.cwd = layout.dir / fs::path(job.cwd).lexically_relative(job.artifact_root);
  }
  materializing_.insert(id);
  Later([this, id, layout]() -> OffLoop::Done {
    auto made = std::make_shared<Result<fs::path>>(Materialize(layout));
    return [this, id, made] {
      materializing_.erase(id);
      suites_[id] = *made ? Suite{**made, {}} : Suite{{}, made->error().message};
    };
  });
  if (!suites_.contains(id)) return {Status::kWaiting, {}};
  return Prepare(job);  // made at once (no OffLoop)
}

std::vector<protocol::SetRequest> ArtifactStore::TakeSetRequests() {
  std::vector<protocol::SetRequest> requests;
  SteadyTime now = options_.clock->Now();
  for (const SetKey& key : unanswered_) {
    KnownSet& known = sets_.at(key);
    if (known.asked_at) {
      if (now < *known.asked_at + options_.resend_after) continue;
      spdlog::warn("no answer for the files of set {} of run {} within {}; asking again",
                   key.second, key.first, FormatDuration(options_.resend_after));
    }
    requests.push_back({key.first, key.second});
    known.asked_at = now;
  }
  return requests;
}

void ArtifactStore::OnSetManifest(protocol::SetManifest manifest) {
  constexpr std::size_t kMaxSets = 1024;  // a set forgotten and needed again is asked again
  auto it = sets_.find({manifest.run, manifest.set});
  if (it == sets_.end() || it->second.manifest) return;  // not asked, or answered already
  it->second.manifest = std::move(manifest);
  const protocol::SetManifest& answer = *it->second.manifest;
  if (answer.error.empty()) {
    it->second.id = ArtifactSetId(answer.root, answer.files);
    ++digests_;
  }
  unanswered_.erase(it->first);
  answered_.push_back(it->first);
  while (answered_.size() > kMaxSets) {
    sets_.erase(answered_.front());
    answered_.pop_front();
  }
}

std::vector<protocol::Fetch> ArtifactStore::TakeFetches() {
  std::vector<protocol::Fetch> fetches;
  if (in_flight_.empty() && queue_.empty()) return fetches;
  SteadyTime now = options_.clock->Now();
  for (auto& [key, asked] : in_flight_) {
    if (now < asked.at + options_.resend_after) continue;
    auto download = downloads_.find(key.first);
    spdlog::warn("no answer for {} bytes of {} at offset {} within {}; asking again", asked.length,
                 download == downloads_.end() ? Short(key.first) : download->second.path,
                 key.second, FormatDuration(options_.resend_after));
    fetches.push_back({key.first, key.second, asked.length});
    asked.at = now;
  }
  while (in_flight_.size() < options_.window && !queue_.empty()) {
    auto it = downloads_.find(queue_.front());
    if (it == downloads_.end() || !it->second.error.empty() ||
        it->second.next_offset >= it->second.size) {
      queue_.pop_front();
      continue;
    }
    Download& download = it->second;
    uint64_t length =
        std::min<uint64_t>(options_.chunk_bytes, download.size - download.next_offset);
    fetches.push_back({it->first, download.next_offset, static_cast<uint32_t>(length)});
    in_flight_[{it->first, download.next_offset}] = Asked{static_cast<uint32_t>(length), now};
    download.next_offset += length;
  }
  return fetches;
}

std::optional<SteadyTime> ArtifactStore::NextDeadline() const {
  std::optional<SteadyTime> next;
  auto consider = [&](SteadyTime asked_at) {
    SteadyTime at = asked_at + options_.resend_after;
    if (!next || at < *next) next = at;
  };
  for (const auto& [key, asked] : in_flight_) consider(asked.at);
  for (const SetKey& key : unanswered_) {
    if (const KnownSet& known = sets_.at(key); known.asked_at) consider(*known.asked_at);
  }
  return next;
}

void ArtifactStore::OnChunk(const protocol::Chunk& chunk) {
  // Only an answer to a request in flight counts: a second answer to one asked again is dropped.
  if (in_flight_.erase({chunk.sha256, chunk.offset}) == 0) return;
  auto it = downloads_.find(chunk.sha256);
  if (it == downloads_.end() || !it->second.error.empty()) return;  // late, or given up
  Download& download = it->second;
  auto give_up = [&](const std::string& why) { GiveUp(chunk.sha256, download, why); };
  if (!chunk.error.empty()) return give_up("the coordinator says: " + chunk.error);
  if (chunk.size != download.size) {
    return give_up("the coordinator has " + std::to_string(chunk.size) + " bytes, the job said " +
                   std::to_string(download.size));
  }
  if (chunk.data.empty())
    return give_up("an empty chunk at offset " + std::to_string(chunk.offset));
  // A chunk past a gap (the one before it is being asked again) waits for it, in memory: at
  // most the window's worth.
  if (chunk.offset > download.pending.written()) {
    download.held[chunk.offset] = chunk.data;
    return;
  }
  auto written = download.pending.Write(chunk.offset, chunk.data);
  if (!written) return give_up(written.error().message);
  fetched_bytes_ += chunk.data.size();
  while (!download.held.empty() && download.held.begin()->first <= download.pending.written()) {
    auto next = download.held.begin();
    auto more = download.pending.Write(next->first, next->second);
    if (!more) return give_up(more.error().message);
    fetched_bytes_ += next->second.size();
    download.held.erase(next);
  }
  if (download.pending.written() < download.size) return;
  StartCommit(chunk.sha256, download);
}

}  // namespace testfarm::worker
