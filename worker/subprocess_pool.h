#pragma once
// The worker's asynchronous subprocess pool. Passive: the node's single poll loop asks it which
// fds to watch and when its next deadline is, then tells it which fds are ready and when time
// has passed. It never sleeps and never blocks.
//
// A job runs in its own process group (posix_spawn, stdin /dev/null, O_CLOEXEC everywhere),
// with stdout/stderr on non-blocking pipes drained until EAGAIN on every wake-up, and its exit
// observed through a pidfd. A job is finished when its process has exited and both pipes reached
// EOF, or when the leak grace has passed after exit (the group is killed, the job is "leaked").
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/defaults.h"
#include "shared/exit_state.h"
#include "worker/spawn.h"

namespace testfarm::worker {

// clamp(hw_threads / 2, 1, 16).
unsigned DefaultSlots(unsigned hw_threads);

struct LaunchSpec {
  std::vector<std::string> argv;           // argv[0]: a path (no PATH search)
  std::map<std::string, std::string> env;  // set on top of the inherited environment
  std::string cwd;                         // empty: inherit
  Millis timeout{0};                       // 0: no timeout
  Millis kill_grace = kDefaultKillGrace;   // SIGTERM -> SIGKILL
  // Non-empty "NAME=PREFIX": NAME is set to PREFIX + a file path in the job's TMPDIR, and the
  // file is read back into FinishedJob::report when the job ends (e.g. "GTEST_OUTPUT=json:").
  std::string report_env;
  // stdout and stderr go straight to the pool owner's (nothing is captured): the job is done
  // when its process exits.
  bool inherit_output = false;
};

// The largest report file read back; a larger one is reported as an error, not truncated.
inline constexpr std::size_t kMaxReportBytes = 32u << 20;

struct PoolOptions {
  unsigned slots = 1;
  std::string worker_name = "local";      // exported as TESTFARM_WORKER
  std::filesystem::path scratch_root;     // per-job TMPDIR parent; empty: system temp dir
  Millis leak_grace = kDefaultLeakGrace;  // after exit, how long pipes may stay open
  std::size_t output_cap = 1u << 20;      // bytes kept per stream (head and tail)
};

struct CapturedOutput {
  std::string text;      // head + tail; when bytes were dropped a marker line sits between
  uint64_t dropped = 0;  // bytes not kept
  uint64_t total = 0;    // bytes read
};

struct FinishedJob {
  uint64_t token = 0;
  ExitState state = ExitState::Exited(0);
  Millis duration{0};
  unsigned slot = 0;
  CapturedOutput out;
  CapturedOutput err;
  std::string report;        // the report file, when LaunchSpec::report_env asked for one
  std::string report_error;  // non-empty: why there is no report
  ProcessUsage usage;        // the main process's peak RSS and CPU time
};

class SubprocessPool {
 public:
  SubprocessPool(const Clock& clock, PoolOptions options);
  ~SubprocessPool();  // SIGKILLs every running group, reaps, removes scratch dirs
  SubprocessPool(const SubprocessPool&) = delete;
  SubprocessPool& operator=(const SubprocessPool&) = delete;

  unsigned slots() const;
  unsigned running() const;
  bool HasFreeSlot() const;

  // Starts `spec` in a free slot (precondition: HasFreeSlot()). The job's environment also gets
  // TESTFARM_WORKER, TESTFARM_SLOT, TESTFARM_JOB (= token) and TMPDIR: the slot's private
  // directory, empty when the job starts, emptied when it finishes, removed with the pool.
  // A job that cannot start finishes at once as SpawnFailed.
  void Start(uint64_t token, LaunchSpec spec);

  // Terminates the job's group (SIGTERM, kill_grace, SIGKILL); it finishes as Cancelled(reason)
  // unless it had already finished. Unknown tokens are ignored.
  void Cancel(uint64_t token, const std::string& reason);
  void CancelAll(const std::string& reason);

  // Poll integration. Appends the fds to watch for POLLIN (pidfds and open pipes).
  void CollectFds(std::vector<int>* fds) const;
  // Called for each fd from CollectFds that poll reported ready (readable, HUP or error).
  void OnFdReady(int fd);
  // Earliest moment the pool must act (a timeout, a kill grace, a leak grace); nullopt if none.
  std::optional<SteadyTime> NextDeadline() const;
  // Acts on everything due at clock.Now(): escalations, leak kills, finishing jobs.
  void OnTimers();

  // Jobs finished since the last call, in the order they finished.
  std::vector<FinishedJob> TakeFinished();

  // The pid of a running job's main process, which is also its process group id; nullopt once
  // the job has finished (or for unknown tokens). For logs and for tests that watch the group.
  std::optional<int> PidOf(uint64_t token) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace testfarm::worker
