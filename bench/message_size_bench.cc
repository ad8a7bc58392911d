// Benchmark (issue 13, item 6): the bytes of one job on the wire when it carries its suite's
// file list (the baseline, as before protocol 7) and when it names the list's set, side by side,
// and of the set's manifest (sent once per worker). A GoogleTest case's job of a suite of N files.
//   build/bench/message_size_bench [FILES=1000]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "protocol/codec.h"
#include "protocol/messages.h"

int main(int argc, char** argv) {
  using namespace testfarm::protocol;
  const int files = argc > 1 ? std::atoi(argv[1]) : 1000;
  if (files < 1) {
    std::fprintf(stderr, "usage: message_size_bench [FILES>=1]\n");
    return 2;
  }
  JobAssign job;
  job.lease = uint64_t{1} << 40;
  job.job_id = 123456;
  job.name = "suite::Suite.Case123";
  job.argv = {"/src/build/bin/suite_test", "--gtest_filter=Suite.Case123"};
  job.cwd = "/src/build";
  job.timeout_ms = 600000;
  job.kill_grace_ms = 10000;
  job.report_env = "GTEST_OUTPUT=json:";
  job.run = 3;
  SetManifest manifest;
  manifest.run = job.run;
  manifest.set = 1;
  manifest.root = "/src/build";
  manifest.library_dirs = {"lib"};
  for (int i = 0; i < files; ++i) {
    manifest.files.push_back(
        {"data/file" + std::to_string(i) + ".bin", std::string(64, 'a'), 4096, false});
  }
  JobAssign listed = job;  // baseline: the list in every job
  listed.artifact_root = manifest.root;
  listed.artifacts = manifest.files;
  listed.library_dirs = manifest.library_dirs;
  JobAssign named = job;
  named.artifact_set = manifest.set;
  const std::size_t listed_bytes = EncodeBody(listed).size();
  const std::size_t named_bytes = EncodeBody(named).size();
  const std::size_t manifest_bytes = EncodeBody(manifest).size();
  std::printf(
      "a job of a %d-file suite: %zu bytes with its file list (baseline), %zu naming its "
      "set: %.4fx (%.0fx smaller)\n",
      files, listed_bytes, named_bytes,
      static_cast<double>(named_bytes) / static_cast<double>(listed_bytes),
      static_cast<double>(listed_bytes) / static_cast<double>(named_bytes));
  std::printf("the set's manifest, once per worker: %zu bytes\n", manifest_bytes);
  return 0;
}
