#pragma once
// Coverage on a worker: each job writes its LLVM raw profiles (one per process, %p) into a
// directory of its own; finished jobs' profiles are merged in the background, a batch at a time,
// into one indexed profile (llvm-profdata merge -sparse), which is what the coordinator gets at
// the end of the run. Raw profiles are large and version-bound; the indexed one is small and
// readable across LLVM versions. The collector decides and keeps the books; the node runs the
// merges it asks for as ordinary subprocesses, without blocking.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/result.h"
#include "worker/raw_profile.h"
#include "worker/scratch_dir.h"
#include "worker/subprocess_pool.h"

namespace testfarm::worker {

struct CoverageOptions {
  std::string llvm_profdata;           // empty: this worker cannot merge (each job says so)
  std::filesystem::path scratch_root;  // where the profiles are kept
  unsigned batch = 64;                 // raw profiles per background merge
};

class CoverageCollector {
 public:
  explicit CoverageCollector(CoverageOptions options);

  // The LLVM_PROFILE_FILE for a job: "<its own dir>/%p.profraw".
  Result<std::string> ProfileFileFor(uint64_t lease);

  struct JobProfiles {
    uint32_t kept = 0;   // non-empty raw profiles queued for merging
    uint32_t empty = 0;  // empty files, or a killed process that left none
  };
  // After the job: its non-empty profiles join the merge queue. `exited`: the process ended on
  // its own (one that was killed or timed out and left no profile counts as one empty).
  JobProfiles TakeJob(uint64_t lease, const std::string& test, bool exited);

  // The merge to run now, if any: a full batch, or with `flushing` whatever is queued. None
  // while one is running.
  std::optional<LaunchSpec> NextMerge(bool flushing);
  void OnMergeFinished(const FinishedJob& merge);

  // Nothing queued and no merge running.
  bool Idle() const { return queue_.empty() && !merging_ && sums_.empty(); }
  // The merged profile (empty path: nothing merged yet).
  std::filesystem::path merged() const {
    return merged_count_ > 0 ? merged_ : std::filesystem::path();
  }
  uint32_t merged_count() const { return merged_count_; }
  const std::vector<std::string>& bad() const { return bad_; }  // "test: file: why"
  const std::string& error() const { return error_; }

 private:
  struct Raw {
    std::filesystem::path path;
    std::string test;
    uint32_t weight = 1;  // raw profiles it stands for (a sum stands for many)
  };
  // Queues each in-process sum as one raw profile file (at the end, or when they grow big).
  void SpillSums();

  CoverageOptions options_;
  ScratchDir dir_;
  std::string error_;
  std::filesystem::path merged_;
  std::filesystem::path merging_out_;
  std::vector<Raw> queue_;
  std::vector<Raw> in_merge_;
  bool merging_ = false;
  uint32_t merged_count_ = 0;
  uint64_t next_raw_ = 0;
  std::vector<std::string> bad_;
  // Raw profiles of one binary are summed in memory as they come (see RawProfileSum); only what
  // cannot be summed goes to llvm-profdata one file at a time.
  std::vector<RawProfileSum> sums_;
  std::size_t sum_bytes_ = 0;
  std::string read_buffer_;  // each raw profile is read into it in turn
};

}  // namespace testfarm::worker
