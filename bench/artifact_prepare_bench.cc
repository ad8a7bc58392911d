// Benchmark (issue 13, items 4 and 6): the worker's cost of preparing one job of an artifact set
// it already holds, for a suite of N files. The baseline does what each job cost before the set's
// digest was kept with its manifest: copy the set's file list into the job, hash the list
// (SHA-256) to find the suite, and gather the list's paths to relocate the job. Both run side by
// side on the same set, in this process. The suite runs in place (--shared-fs); a worker's own
// copy adds the job's relocation (a few string rewrites of its argv, cwd and env) to both.
//   build/bench/artifact_prepare_bench [FILES=1000] [JOBS=2000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "protocol/messages.h"
#include "shared/sha256.h"
#include "worker/artifact_store.h"

namespace fs = std::filesystem;
using namespace testfarm;

int main(int argc, char** argv) {
  const int files = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int jobs = argc > 2 ? std::atoi(argv[2]) : 2000;
  if (files < 1 || jobs < 1) {
    std::fprintf(stderr, "usage: artifact_prepare_bench [FILES>=1] [JOBS>=1]\n");
    return 2;
  }
  // A suite of `files` small files the worker sees at the coordinator's paths (--shared-fs).
  fs::path root =
      fs::temp_directory_path() / ("testfarm-prepare-bench-" + std::to_string(getpid()));
  fs::create_directories(root / "data");
  protocol::SetManifest manifest;
  manifest.run = 1;
  manifest.set = 1;
  manifest.root = root.string();
  for (int i = 0; i < files; ++i) {
    std::string path = "data/file" + std::to_string(i) + ".bin";
    std::ofstream(root / path) << "file " << i;
    auto sha = Sha256File(root / path);
    if (!sha) {
      std::fprintf(stderr, "%s\n", sha.error().message.c_str());
      return 1;
    }
    manifest.files.push_back({path, *sha, 0, false});
    manifest.files.back().size = fs::file_size(root / path);
  }
  worker::ArtifactStoreOptions options;
  options.shared_fs = true;
  options.scratch_root = fs::temp_directory_path();
  worker::ArtifactStore store(options);
  auto job_of = [&](uint64_t lease) {
    protocol::JobAssign job;
    job.lease = lease;
    job.run = 1;
    job.artifact_set = 1;
    job.argv = {root.string() + "/bin/suite_test", "--gtest_filter=Suite.Case"};
    job.cwd = root.string();
    return job;
  };
  protocol::JobAssign first = job_of(1);
  store.Prepare(first);
  store.TakeSetRequests();
  store.OnSetManifest(manifest);
  if (store.Prepare(first).status != worker::ArtifactStore::Status::kReady) {
    std::fprintf(stderr, "the suite did not become ready\n");
    return 1;
  }
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  for (int i = 0; i < jobs; ++i) {
    protocol::JobAssign job = job_of(static_cast<uint64_t>(i) + 2);
    if (store.Prepare(job).status != worker::ArtifactStore::Status::kReady) return 1;
  }
  const double now_us =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count() / jobs;
  // The baseline: what Prepare did per job before (copy, digest, paths), on the same set.
  start = Clock::now();
  std::size_t sink = 0;
  for (int i = 0; i < jobs; ++i) {
    protocol::JobAssign job = job_of(static_cast<uint64_t>(i) + 2);
    job.artifact_root = manifest.root;
    job.artifacts = manifest.files;
    std::string id = worker::ArtifactSetId(job);
    std::set<std::string> paths;
    for (const protocol::ArtifactFile& file : job.artifacts) {
      paths.insert((fs::path(job.artifact_root) / file.path).string());
    }
    sink += id.size() + paths.size();
  }
  const double before_us =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count() / jobs;
  fs::remove_all(root);
  if (sink == 0) return 1;  // the baseline's work is used, so it is not optimised away
  std::printf(
      "preparing a job of a known %d-file set (%d jobs): %.2f us now, %.2f us before "
      "(baseline, side by side): %.4fx (%.0fx less)\n",
      files, jobs, now_us, before_us, now_us / before_us, before_us / now_us);
  return 0;
}
