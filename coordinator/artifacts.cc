#include "coordinator/artifacts.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "coordinator/elf_deps.h"
#include "shared/errno_text.h"
#include "shared/file_io.h"
#include "shared/sha256.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

std::vector<const ArtifactSet*> ShipTests(ArtifactCatalog& catalog, std::vector<TestSpec>& tests) {
  std::vector<const ArtifactSet*> shipped(tests.size(), nullptr);
  for (std::size_t t = 0; t < tests.size(); ++t) {
    if (tests[t].decided()) continue;
    if (auto set = catalog.For(tests[t])) {
      shipped[t] = *set;
    } else {
      tests[t].error = set.error().message;
    }
  }
  return shipped;
}

protocol::Chunk ServedFiles::Read(const protocol::Fetch& fetch,
                                  const std::function<Result<std::filesystem::path>()>& locate) {
  protocol::Chunk chunk;
  chunk.sha256 = fetch.sha256;
  chunk.offset = fetch.offset;
  auto it = open_.find(fetch.sha256);
  if (it != open_.end() && fetch.offset == 0) {
    open_.erase(it);  // a new fetch: where the blob is is looked up again
    it = open_.end();
  }
  if (it == open_.end()) {
    Result<std::filesystem::path> path = locate();
    if (!path) {
      chunk.error = path.error().message;
      return chunk;
    }
    UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
      chunk.error = "cannot read " + path->string() + ": " + ErrnoText(errno);
      return chunk;
    }
    ++opens_;
    if (open_.size() >= max_open_) {
      auto oldest = std::min_element(open_.begin(), open_.end(), [](const auto& a, const auto& b) {
        return a.second.used < b.second.used;
      });
      open_.erase(oldest);
    }
    it =
        open_
            .emplace(fetch.sha256, Open{std::move(fd), static_cast<uint64_t>(st.st_size), *path, 0})
            .first;
  }
  Open& file = it->second;
  file.used = ++reads_;
  chunk.size = file.size;
  uint64_t available = chunk.size > fetch.offset ? chunk.size - fetch.offset : 0;
  Result<std::string> data =
      ReadAt(file.fd.get(), fetch.offset, std::min<uint64_t>(available, fetch.length));
  if (!data) {
    chunk.error = "cannot read " + file.path.string() + ": " + data.error().message;
    open_.erase(it);  // opened afresh next time
  } else {
    chunk.data = std::move(*data);
    // Its last piece: closed, so a blob evicted from a store does not keep its space.
    if (fetch.offset + chunk.data.size() >= file.size) open_.erase(it);
  }
  return chunk;
}

namespace fs = std::filesystem;

namespace {

// `path` made absolute against `base` (or the current directory) and lexically normal.
fs::path Absolute(const std::string& path, const std::string& base) {
  fs::path p(path);
  if (p.is_relative()) {
    std::error_code ec;  // a current directory that is gone leaves the path relative
    p = (base.empty() ? fs::current_path(ec) : fs::path(base)) / p;
  }
  return p.lexically_normal();
}

}  // namespace

std::optional<fs::path> OwnExecutable(const TestSpec& test) {
  if (test.settings().command.empty() ||
      test.settings().command.front().find('/') == std::string::npos) {
    return std::nullopt;
  }
  fs::path executable = Absolute(test.settings().command.front(), test.settings().cwd);
  if (IsSystemPath(executable.string())) return std::nullopt;
  return executable;
}

fs::path CommonRoot(const std::vector<fs::path>& paths) {
  if (paths.empty()) return "/";
  fs::path root = paths.front();
  for (const fs::path& path : paths) {
    fs::path common;
    auto a = root.begin();
    auto b = path.begin();
    for (; a != root.end() && b != path.end() && *a == *b; ++a, ++b) common /= *a;
    root = common;
  }
  return root.empty() ? fs::path("/") : root;
}

Result<protocol::ArtifactFile> ArtifactCatalog::Describe(const fs::path& file) {
  if (auto it = files_.find(file); it != files_.end()) return it->second;
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return Error{"cannot ship " + file.string() + ": " + ErrnoText(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{"cannot ship " + file.string() + ": not a regular file"};
  auto digest = Sha256File(file);
  if (!digest) return Error{"cannot ship: " + digest.error().message};
  hashed_bytes_ += static_cast<uint64_t>(st.st_size);
  protocol::ArtifactFile described;
  described.sha256 = *digest;
  described.size = static_cast<uint64_t>(st.st_size);
  described.executable = (st.st_mode & 0111) != 0;
  blobs_.emplace(*digest, file);
  files_.emplace(file, described);
  return described;
}

Result<ArtifactSet> ArtifactCatalog::Build(const TestSpec& test) {
  std::vector<fs::path> files;
  std::set<fs::path> libraries;
  // A bare name is looked up on the worker's PATH; a system path is the worker's own.
  if (std::optional<fs::path> executable = OwnExecutable(test)) {
    files.push_back(*executable);
    auto found = BuildTreeLibraries(*executable);
    if (!found) return Error{"cannot ship: " + found.error().message};
    for (const fs::path& library : *found) {
      files.push_back(library.lexically_normal());
      libraries.insert(files.back());
    }
  }
  for (const std::string& data : test.settings().data_files) {
    fs::path path = Absolute(data, test.settings().cwd);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (auto it = fs::recursive_directory_iterator(path, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) files.push_back(it->path().lexically_normal());
      }
      if (ec) return Error{"cannot ship " + path.string() + ": " + ec.message()};
    } else {
      files.push_back(path);
    }
  }
  ArtifactSet set;
  if (files.empty()) return set;
  // Every job names its files; a list this long would not fit a message's value budget.
  constexpr std::size_t kMaxFiles = 10000;
  if (files.size() > kMaxFiles) {
    return Error{"cannot ship " + std::to_string(files.size()) + " files (more than " +
                 std::to_string(kMaxFiles) + "): declare fewer data files, or use workers " +
                 "with --shared-fs"};
  }
  std::vector<fs::path> anchors = files;
  for (fs::path& anchor : anchors) anchor = anchor.parent_path();
  if (!test.settings().cwd.empty()) anchors.push_back(Absolute(test.settings().cwd, ""));
  fs::path root = CommonRoot(anchors);
  set.root = root.string();
  std::set<std::string> seen;
  std::set<std::string> library_dirs;
  for (std::size_t i = 0; i < files.size(); ++i) {
    std::string relative = files[i].lexically_relative(root).string();
    if (!seen.insert(relative).second) continue;
    auto described = Describe(files[i]);
    if (!described) return described.error();
    protocol::ArtifactFile file = *described;
    file.path = relative;
    set.files.push_back(std::move(file));
    if (libraries.contains(files[i])) {
      library_dirs.insert(files[i].parent_path().lexically_relative(root).string());
    }
  }
  set.library_dirs.assign(library_dirs.begin(), library_dirs.end());
  return set;
}

Result<const ArtifactSet*> ArtifactCatalog::For(const TestSpec& test) {
  std::string key = (test.settings().command.empty() ? "" : test.settings().command.front()) +
                    '\0' + test.settings().cwd;
  for (const std::string& data : test.settings().data_files) key += '\0' + data;
  if (auto it = sets_.find(key); it != sets_.end()) return &it->second;
  auto built = Build(test);
  if (!built) return built.error();
  return &sets_.emplace(key, std::move(*built)).first->second;
}

const fs::path* ArtifactCatalog::PathOf(const std::string& sha256) const {
  auto it = blobs_.find(sha256);
  return it == blobs_.end() ? nullptr : &it->second;
}

}  // namespace testfarm::coordinator
