#pragma once
// One filled-in example of every client <-> farm message (protocol 5), for the codec's round
// trips and truncations and the fuzzer's seeds.
#include <string>
#include <vector>

#include "protocol/messages.h"

namespace testfarm::testing {

inline std::vector<protocol::Message> FarmMessageSamples() {
  using namespace testfarm::protocol;
  const std::string odd("a\0\xff\xc3\xa9", 5);
  const std::string sha(64, 'd');
  RunTest test{.name = "suite::A.b",
               .suite = "suite",
               .gtest_case = "A.b",
               .command = {"/b/suite", odd},
               .env = {{"K", odd}},
               .cwd = "/b",
               .timeout_ms = 30000,
               .labels = {"fast"},
               .required_labels = {{"gpu", "1"}},
               .will_fail = true,
               .has_skip_return_code = true,
               .skip_return_code = 77,
               .run_serial = true,
               .depends = {"other"},
               .fixtures_setup = {"db"},
               .fixtures_required = {"net"},
               .fixtures_cleanup = {"tmp"},
               .resource_locks = {"port"},
               .processors = 2,
               .pass_regex = {"ok"},
               .fail_regex = {"FAIL"},
               .skip_regex = {"SKIP"},
               .skip_reason = "",
               .error = "",
               .error_output = "",
               .cannot_run = "",
               .file_set = 1};
  JobResult result;
  result.lease = (uint64_t{3} << 40) + 1;
  result.job_id = 4;
  result.state = ExitState::Signaled(11, true);
  result.duration_ms = 12;
  result.slot = 1;
  result.stdout_text = "out" + odd;
  result.report = "{}";
  RunTest skipped;
  skipped.name = skipped.suite = "off";
  skipped.skip_reason = "disabled";
  TestDone skipped_done;
  skipped_done.test = 1;
  skipped_done.state = "skipped";
  skipped_done.reason = "disabled";
  return {
      Submit{.client = "ci-1@host",
             .label = "abc123",
             .test_count = 2,
             .max_failures = 3,
             .max_lost_workers = 2,
             .has_prefetch = true,
             .prefetch = 0,
             .kill_grace_ms = 2000,
             .lease_slack_ms = 10000,
             .stop_slack_ms = 5000,
             .batch = true,
             .batch_target_ms = 200,
             .first_batch = 4,
             .max_batch = 256,
             .slow_timeout_ms = 60000,
             .min_workers = 1,
             .wait_workers_ms = 0,
             .max_slots = 8,
             .coverage = true},
      SubmitPart{.tests = {test, skipped},
                 .file_sets = {FileSet{
                     .root = "/b",
                     .files = {{.path = "suite", .sha256 = sha, .size = 10, .executable = true}},
                     .library_dirs = {"lib"}}},
                 .last = true},
      Accepted{.run_id = "run-3", .waiting_behind = 1, .error = ""},
      Accepted{.run_id = "", .waiting_behind = 0, .error = "the farm is full"},
      HasBlobs{.sha256 = {sha}},
      MissingBlobs{.sha256 = {sha}},
      Upload{.sha256 = sha, .offset = 0, .size = 5, .data = odd},
      WorkerJoined{.name = "w1", .slots = 4},
      TestStarted{.name = "suite::A.b", .worker = "w1"},
      TestSlow{.name = "suite::A.b", .running_ms = 61000},
      Running{.count = 3, .longest = "suite::A.b", .longest_ms = 1500},
      ProfileData{.index = 1, .offset = 0, .size = 5, .data = odd},
      TestDone{.test = 0,
               .state = "failed",
               .result = {result},
               .reason = "",
               .message = "expected 1" + odd,
               .duration_ms = 12,
               .worker = "w1",
               .slot = 1,
               .started_at_ms = 5,
               .finished_at_ms = 17,
               .attempt = 2,
               .batch = true,
               .running = 3},
      skipped_done,
      RunFinished{.interrupted = true,
                  .stop_reason = "interrupted",
                  .wall_ms = 1234,
                  .raw_profiles = 9,
                  .merged = 8,
                  .empty = {"t (SIGKILL)"},
                  .bad = {"w1: t: 1.profraw: truncated"},
                  .errors = {"w2: lost"},
                  .collect_ms = 40},
      StopRun{},
      StatusRequest{},
      HistoryQuery{.what = "attempts", .test = "net::*", .label = "main", .since_ms = 1234},
      HistoryAnswer{.json = "{\"testfarm_history\": 1}", .error = ""},
      HistoryAnswer{.json = "", .error = "this farm keeps no history"},
      FarmStatus{.workers = {WorkerStatus{.name = "w1",
                                          .labels = {{"gpu", "1"}},
                                          .slots = 4,
                                          .busy = 1,
                                          .tests = {"suite::A.b"}}},
                 .runs = {RunStatus{.run_id = "run-3",
                                    .client = "ci-1@host",
                                    .label = "abc123",
                                    .state = "running",
                                    .tests = 2,
                                    .finished = 1,
                                    .failed = 1,
                                    .slots = 4,
                                    .running = 1}},
                 .max_runs = 16},
  };
}

}  // namespace testfarm::testing
