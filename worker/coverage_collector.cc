#include "worker/coverage_collector.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "shared/file_io.h"

namespace testfarm::worker {

namespace fs = std::filesystem;

// Far beyond a raw profile of any real binary; a bigger file goes to llvm-profdata as it is.
constexpr std::size_t kMaxProfileBytes = std::size_t{1} << 30;

CoverageCollector::CoverageCollector(CoverageOptions options) : options_(std::move(options)) {}

Result<std::string> CoverageCollector::ProfileFileFor(uint64_t lease) {
  if (!dir_.valid()) {
    auto created = ScratchDir::Create(options_.scratch_root, "testfarm-coverage-");
    if (!created) return created.error();
    dir_ = std::move(*created);
    merged_ = dir_.path() / "merged.profdata";
  }
  // One flat directory, the lease in each file's name: no directory made and removed per job.
  return (dir_.path() / ("j" + std::to_string(lease) + "-%p.profraw")).string();
}

CoverageCollector::JobProfiles CoverageCollector::TakeJob(uint64_t lease, const std::string& test,
                                                          bool exited) {
  JobProfiles counts;
  if (!dir_.valid()) return counts;
  const std::string prefix = "j" + std::to_string(lease) + "-";
  std::error_code ec;
  std::vector<fs::path> mine;
  // Incremented with an error code: a range-for's ++ would throw.
  for (fs::directory_iterator it(dir_.path(), ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.starts_with(prefix) && name.ends_with(".profraw")) mine.push_back(it->path());
  }
  for (const fs::path& path : mine) {
    fs::directory_entry entry(path, ec);
    if (entry.file_size(ec) == 0) {
      ++counts.empty;
      fs::remove(path, ec);
      continue;
    }
    // Same binary as profiles before it: add its counters, no file kept.
    if (ReadWholeFileInto(entry.path(), kMaxProfileBytes, &read_buffer_)) {
      const std::string& bytes = read_buffer_;
      bool summed = false;
      for (RawProfileSum& sum : sums_) {
        if ((summed = sum.Add(bytes))) break;
      }
      if (RawProfileSum first; !summed && first.Add(bytes)) {  // a binary not seen yet
        sums_.push_back(std::move(first));
        sum_bytes_ += bytes.size();
        summed = true;
      }
      if (summed) {
        fs::remove(entry.path(), ec);
        ++counts.kept;
        continue;
      }
    }
    // Left for llvm-profdata, under a name of our own.
    fs::path raw = dir_.path() / ("raw-" + std::to_string(++next_raw_) + ".profraw");
    fs::rename(entry.path(), raw, ec);
    if (ec) continue;
    queue_.push_back({raw, test});
    ++counts.kept;
  }
  // Many binaries each run once would keep a profile each in memory: past 256 MB, to disk.
  if (sum_bytes_ > (std::size_t{256} << 20)) SpillSums();
  // Killed before it could write one (the runtime may have left an empty file: counted above).
  if (!exited && counts.kept == 0 && counts.empty == 0) ++counts.empty;
  return counts;
}

void CoverageCollector::SpillSums() {
  for (RawProfileSum& sum : sums_) {
    fs::path raw = dir_.path() / ("sum-" + std::to_string(++next_raw_) + ".profraw");
    std::ofstream out(raw, std::ios::binary);
    out.write(sum.profile().data(), static_cast<std::streamsize>(sum.profile().size()));
    out.close();
    std::string what = std::to_string(sum.count()) + " summed profiles";
    if (!out) {
      bad_.push_back(what + ": cannot write " + raw.string());
      continue;
    }
    queue_.push_back({raw, what, static_cast<uint32_t>(sum.count())});
  }
  sums_.clear();
  sum_bytes_ = 0;
}

std::optional<LaunchSpec> CoverageCollector::NextMerge(bool flushing) {
  if (flushing && !merging_) SpillSums();
  if (merging_ || queue_.empty()) return std::nullopt;
  if (!flushing && queue_.size() < options_.batch) return std::nullopt;
  if (options_.llvm_profdata.empty()) {
    for (const Raw& raw : queue_) {
      std::error_code ec;
      fs::remove(raw.path, ec);
    }
    queue_.clear();
    error_ = "llvm-profdata not found on this worker (give `testfarm worker --llvm-profdata`)";
    return std::nullopt;
  }
  std::size_t take = std::min<std::size_t>(queue_.size(), options_.batch);
  in_merge_.assign(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(take));
  merging_out_ = dir_.path() / "merged.next.profdata";
  LaunchSpec spec;
  spec.argv = {options_.llvm_profdata, "merge", "-sparse",
               "--failure-mode=all",   "-o",    merging_out_.string()};
  if (merged_count_ > 0) spec.argv.push_back(merged_.string());
  for (const Raw& raw : in_merge_) spec.argv.push_back(raw.path.string());
  spec.timeout = Millis(5 * 60 * 1000);  // a stuck merge must not hold the run's end forever
  merging_ = true;
  return spec;
}

void CoverageCollector::OnMergeFinished(const FinishedJob& merge) {
  merging_ = false;
  // llvm-profdata names each input it could not use: "warning: FILE: why".
  std::map<std::string, std::string> rejected;
  std::istringstream lines(merge.err.text);
  for (std::string line; std::getline(lines, line);) {
    for (const Raw& raw : in_merge_) {
      std::size_t at = line.find(raw.path.string() + ": ");
      if (at != std::string::npos) {
        rejected[raw.path.string()] = line.substr(at + raw.path.string().size() + 2);
      }
    }
  }
  std::error_code ec;
  if (merge.state.passed()) {
    fs::rename(merging_out_, merged_, ec);
    if (ec) {
      error_ = "cannot keep the merged profile: " + ec.message();
    }
  } else {
    // Every input was bad (or the tool failed): what was merged before stays as it was.
    std::string why = merge.err.text.empty() ? merge.state.Describe() : merge.err.text;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    for (const Raw& raw : in_merge_) rejected.emplace(raw.path.string(), why);
    spdlog::warn("coverage: llvm-profdata merge failed: {}", why);
  }
  for (const Raw& raw : in_merge_) {
    if (auto it = rejected.find(raw.path.string()); it != rejected.end()) {
      bad_.push_back(raw.test + ": " + raw.path.filename().string() + ": " + it->second);
    } else if (merge.state.passed()) {
      merged_count_ += raw.weight;
    }
    fs::remove(raw.path, ec);
  }
  fs::remove(merging_out_, ec);
  in_merge_.clear();
}

}  // namespace testfarm::worker
