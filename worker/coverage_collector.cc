#include "worker/coverage_collector.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <sstream>

namespace testfarm::worker {

namespace fs = std::filesystem;

CoverageCollector::CoverageCollector(CoverageOptions options) : options_(std::move(options)) {}

Result<std::string> CoverageCollector::ProfileFileFor(uint64_t lease) {
  if (!dir_.valid()) {
    auto created = ScratchDir::Create(options_.scratch_root, "testfarm-coverage-");
    if (!created) return created.error();
    dir_ = std::move(*created);
    merged_ = dir_.path() / "merged.profdata";
  }
  fs::path job = dir_.path() / ("job-" + std::to_string(lease));
  std::error_code ec;
  fs::remove_all(job, ec);
  fs::create_directories(job, ec);
  if (ec) return Error{"cannot create " + job.string() + ": " + ec.message()};
  return (job / "%p.profraw").string();
}

CoverageCollector::JobProfiles CoverageCollector::TakeJob(uint64_t lease, const std::string& test,
                                                          bool exited) {
  JobProfiles counts;
  if (!dir_.valid()) return counts;
  fs::path job = dir_.path() / ("job-" + std::to_string(lease));
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(job, ec)) {
    if (entry.path().extension() != ".profraw") continue;
    if (entry.file_size(ec) == 0) {
      ++counts.empty;
      continue;
    }
    // Out of the job's directory (which goes away) under a name of our own.
    fs::path raw = dir_.path() / ("raw-" + std::to_string(++next_raw_) + ".profraw");
    fs::rename(entry.path(), raw, ec);
    if (ec) continue;
    queue_.push_back({raw, test});
    ++counts.kept;
  }
  fs::remove_all(job, ec);
  // Killed before it could write one (the runtime may have left an empty file: counted above).
  if (!exited && counts.kept == 0 && counts.empty == 0) ++counts.empty;
  return counts;
}

std::optional<LaunchSpec> CoverageCollector::NextMerge(bool flushing) {
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
      ++merged_count_;
    }
    fs::remove(raw.path, ec);
  }
  fs::remove(merging_out_, ec);
  in_merge_.clear();
}

}  // namespace testfarm::worker
