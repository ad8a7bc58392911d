#pragma once
// The coordinator's run loop: a ROUTER socket, the registry of workers, the scheduler, the
// batcher and the reporter, driven by one zmq::poll over the socket and a signal fd. It does;
// the scheduler, the batcher and Interpret decide.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "coordinator/artifacts.h"
#include "coordinator/batcher.h"
#include "coordinator/outcome.h"
#include "coordinator/report.h"
#include "coordinator/running_tests.h"
#include "coordinator/scheduler.h"
#include "coordinator/test_order.h"
#include "coordinator/test_spec.h"
#include "coordinator/zap_handler.h"
#include "protocol/bad_frames.h"
#include "protocol/curve.h"
#include "protocol/handshake_monitor.h"
#include "protocol/poll_loop.h"
#include "shared/clock.h"
#include "shared/liveness.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct CoordinatorOptions {
  SchedulerOptions scheduler;
  // After the run stops (interrupt, fail-fast), how long to wait for cancelled jobs to report
  // beyond the kill grace before giving up on them.
  Millis stop_slack{5000};
  // --isolation batch: cases of one GoogleTest binary share processes.
  bool batch = false;
  BatcherOptions batcher;
  // Heartbeats both ways; a worker silent for liveness x interval is dead and its jobs requeued.
  LivenessOptions liveness;
  // Nothing is dispatched until this many workers have joined, or `wait_workers` has passed
  // (then the run goes on with whoever came; with nobody it stops). After `wait_workers`, tests
  // whose required labels no connected worker has fail.
  unsigned min_workers = 1;
  Millis wait_workers{0};
  // CurveZMQ: with `keys`, only workers holding a key in `allowed_workers` (or these keys
  // themselves, as the in-process worker does) may connect.
  std::optional<protocol::KeyPair> keys;
  std::vector<protocol::AllowedKey> allowed_workers;
  // Jobs name the files they need (content-addressed) and workers fetch the ones they lack.
  bool ship_artifacts = false;
  // Coverage: tests write LLVM profiles; at the end each worker sends its merged profile, which
  // is kept in `profile_dir`.
  bool coverage = false;
  std::filesystem::path profile_dir;
  // --slow-timeout: a test running this long is reported slow (once); 0: never.
  Millis slow_timeout{0};
};

class Coordinator {
 public:
  Coordinator(zmq::context_t& context, const Clock& clock, std::vector<TestSpec> tests,
              CoordinatorOptions options, Reporter& reporter);

  // Binds the ROUTER socket. Returns the bound endpoint (with the port resolved) or an error.
  Result<std::string> Bind(const std::string& endpoint);

  // Hashes what remote workers will fetch (with ship_artifacts): slow for big binaries, so it is
  // done before any worker connects. Run() calls it if the caller did not.
  void Prepare();

  // Runs until every test has a final state. `signal_fd` (or -1) becomes readable when the user
  // interrupts: the first signal stops the run gracefully, a second gives up waiting.
  RunSummary Run(int signal_fd);

 private:
  struct WorkerInfo {
    std::string name;
    unsigned slots = 0;
    Liveness liveness;
  };
  struct Job {
    std::vector<std::size_t> tests;
    bool batch = false;
    unsigned attempt = 1;
  };

  void PlanInitialJobs();
  JobId AddJob(std::vector<std::size_t> tests, bool batch, unsigned attempt, bool front);
  void RefillBatches();
  bool Done() const;
  void Loop(protocol::PollLoop& loop, int signal_fd);
  // Registers the socket, the handshake monitor, the ZAP handler, the signal fd and the
  // deadlines with the run's loop.
  void Watch(protocol::PollLoop* loop, int signal_fd);
  void HandleIncoming();
  void HandleMessage(const std::string& identity, protocol::Message& message);
  void OnHello(const std::string& identity, const protocol::Hello& hello);
  void OnResult(const std::string& identity, protocol::JobResult& result);
  void OnFetch(const std::string& identity, const protocol::Fetch& fetch);
  void OnProfileChunk(const std::string& identity, protocol::ProfileChunk& chunk);
  void CollectProfiles(protocol::PollLoop& loop);
  void OnSignal(int signal_fd);
  void ForgetWorker(const std::string& identity, const std::string& why, bool lost);
  void CheckWorkers();  // heartbeats out, dead workers out
  bool DispatchOpen();
  void StopIfNoWorkerCanCome();
  void FailUnplaceable();
  void PerformActions();
  // Tests that did not run because a fixture's setup did not pass: reported NOTRUN with why.
  void ReportBlocked();
  // A test asking for more processors than the worker it went to has: said once per test.
  void WarnIfClamped(std::size_t test, const std::string& identity);
  void ReportJob(JobId job, JobState state, const std::string& reason);
  void Report(std::size_t test, JobState state, const protocol::JobResult* result,
              std::string reason, std::string message, Millis duration, const std::string& worker,
              unsigned attempt, bool batch);
  void SendTo(const std::string& identity, const protocol::Message& message);
  void AbandonOutstanding(const std::string& why);
  // The nearest moment the loop must wake; while collecting profiles, only theirs and liveness.
  std::optional<SteadyTime> NextDeadline() const;
  // Tells the reporter what started, what is slow and what runs longest.
  void WatchRunning();

  void CheckHandshakes();

  std::optional<ZapHandler> zap_;  // before socket_: it must exist before anyone connects
  zmq::socket_t socket_;
  std::optional<protocol::HandshakeMonitor> monitor_;
  std::set<std::string> handshake_failures_logged_;
  protocol::BadFrameLog bad_frames_;                 // bad frames said at a bounded rate per peer
  std::set<std::string> version_mismatches_logged_;  // by identity
  struct ProfileDownload {
    std::string name;
    std::filesystem::path path;
    std::string data;
    bool done = false;
  };
  std::map<std::string, ProfileDownload> profiles_;  // by worker identity, once requested
  std::map<std::string, uint64_t> raw_profiles_;     // by worker identity: its tests' profiles
  bool prepared_ = false;
  static constexpr Millis kProfileWait{10 * 60 * 1000};  // bound on collecting profiles
  const Clock& clock_;
  std::vector<TestSpec> tests_;
  CoordinatorOptions options_;
  Reporter& reporter_;
  Scheduler scheduler_;
  RunningTests running_;
  Batcher batcher_;
  ArtifactCatalog artifacts_;
  std::map<std::size_t, std::size_t> batch_suite_of_;  // test -> batcher suite
  std::vector<Job> jobs_;                              // by scheduler JobId
  TestOrder order_;                                    // DEPENDS and fixtures among tests_
  std::map<std::pair<std::size_t, std::size_t>, std::string>
      fixture_of_;                             // (user, setup) -> the fixture the user requires
  std::set<std::size_t> clamp_warned_;         // tests warned about PROCESSORS
  std::map<std::string, WorkerInfo> workers_;  // by ROUTER identity
  std::map<std::string, std::string> worker_names_;  // every worker ever seen, for messages
  bool dispatch_open_ = false;
  std::vector<bool> reported_;
  RunSummary summary_;
  SteadyTime started_;
  std::optional<SteadyTime> give_up_at_;  // set once the run is stopping
  std::optional<SteadyTime> first_signal_at_;
  bool signalled_ = false;                      // the signal fd was readable this turn
  std::optional<SteadyTime> profile_deadline_;  // set while collecting coverage profiles
  std::optional<SteadyTime> last_check_;        // the last CheckWorkers()
  static constexpr Millis kSecondSignalAfter{1000};
};

}  // namespace testfarm::coordinator
