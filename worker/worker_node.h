#pragma once
// The worker's node loop: a DEALER socket to the coordinator and the subprocess pool, watched by
// one protocol::PollLoop whose timeout is the nearest deadline. Jobs beyond the free slots
// wait in a local queue (the coordinator's prefetch window) and start the moment a slot frees.
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <zmq.hpp>

#include "protocol/curve.h"
#include "protocol/messages.h"
#include "protocol/peer_link.h"
#include "shared/clock.h"
#include "shared/defaults.h"
#include "shared/liveness.h"
#include "shared/result.h"
#include "shared/unique_fd.h"
#include "worker/artifact_store.h"
#include "worker/coverage_collector.h"
#include "worker/health_file.h"
#include "worker/subprocess_pool.h"

namespace testfarm::worker {

struct WorkerNodeOptions {
  std::string endpoint;  // the coordinator, e.g. inproc://testfarm or tcp://host:7700
  std::string name;      // shown to the user; exported as TESTFARM_WORKER
  unsigned slots = 1;
  Millis leak_grace = kDefaultLeakGrace;
  std::filesystem::path scratch_root;         // empty: the system temp dir
  std::map<std::string, std::string> labels;  // announced; jobs may require them
  LivenessOptions liveness;  // heartbeats to the coordinator; its silence ends the run
  int stop_fd = -1;          // readable: a signal to stop (a signalfd); -1: none
  // SIGTERM on stop_fd drains for up to this long: no new jobs, those not started are handed
  // back to the coordinator at once, running ones may finish; then the rest are handed back
  // (`bye`). nullopt or 0, SIGINT and a second signal: stop at once, handing everything back.
  std::optional<Millis> drain_timeout;
  // Told the connection's state (connecting, connected, draining); may be null.
  HealthFile* health = nullptr;
  // CurveZMQ: this worker's keys and the only coordinator key it talks to.
  std::optional<protocol::KeyPair> keys;
  std::string coordinator_key;
  // Artifacts: where fetched blobs are kept (none: only files seen at the coordinator's paths
  // can run), and whether to use those paths when their hashes match.
  BlobCache* cache = nullptr;
  bool shared_fs = false;
  // Coverage: the tool that merges raw profiles (empty: the profile this worker sends at the
  // end of a coverage run carries an error saying it is missing).
  std::string llvm_profdata;
  // Tests write straight to this process's stdout and stderr instead of being captured
  // (`testfarm run --no-capture`): only meaningful for the in-process worker.
  bool inherit_output = false;
  // Not welcomed by the coordinator by then: stop trying (RunEnd::kCannotJoin) even before the
  // liveness bound. Unset: the liveness bound alone.
  std::optional<SteadyTime> join_by;
};

// What ended a ServeOneRun.
enum class RunEnd {
  kCoordinatorSaidBye,
  kContextClosed,    // the ZeroMQ context was shut down (the in-process worker's normal end)
  kCoordinatorLost,  // joined, then no word from the coordinator for liveness x interval
  kCannotJoin,       // never joined: nothing listens, our key was refused, no answer...
  kStopped,          // stop_fd became readable (after the drain, if it was one)
};

class WorkerNode {
 public:
  WorkerNode(zmq::context_t& context, const Clock& clock, WorkerNodeOptions options);

  // Connects, says hello and runs jobs until the coordinator says bye (then cancels anything
  // left, reports it, and returns), falls silent, the context is shut down or stop_fd fires.
  // Jobs still running then are killed when the node is destroyed. Any other socket failure is
  // an error.
  Result<RunEnd> ServeOneRun();
  // For kCannotJoin and kCoordinatorLost: why, in words ("connection refused: nothing listens at
  // 127.0.0.1:7700", "the coordinator refused our key").
  const std::string& end_reason() const { return end_reason_; }
  // A stop signal came while serving (it drained, or was draining when the run ended): the
  // process should exit rather than serve another run.
  bool stopping() const { return stopping_; }

 private:
  void HandleIncoming(bool* bye);
  void HandleMessage(protocol::Message& message, bool* bye);
  void StartQueuedJobs();
  void SendFetches();
  void RunMerges();
  // The coverage of one run this worker serves (a farm's worker serves several at once).
  struct RunCoverage {
    explicit RunCoverage(CoverageOptions options) : collector(std::move(options)) {}
    CoverageCollector collector;
    bool requested = false;  // its profile was asked for: send it once its merges are done
  };
  RunCoverage& CoverageOf(uint64_t run);
  // A run's merged profile, ready: its first piece goes now, the rest when asked for.
  void OfferProfile(uint64_t run, std::unique_ptr<RunCoverage> coverage);
  // The piece of the run's offered profile at `offset`, read from disk now; the last one lets
  // the profile go.
  void SendProfilePiece(uint64_t run, uint64_t offset);
  void FailJob(const protocol::JobAssign& job, ExitState state);
  // A stop signal (its number) came: begin draining, or say goodbye now. True: stop now.
  bool OnStopSignal(int signal);
  // Says goodbye (the coordinator requeues whatever this worker still holds) and stops.
  void Leave(const std::string& why);
  // Draining: whether it is over (nothing runs, or the drain timed out); says goodbye if so.
  bool DrainOver(SteadyTime now);
  const char* HealthState() const;
  void CollectFinished();
  void Queue(protocol::Message message);
  void FlushOutbox();
  // The blob cache's size for a heartbeat: the last measure (0 before the first), a new one
  // asked of the off-loop thread at most every kCacheSizeEvery; 0 without a cache.
  uint64_t CacheBytes(SteadyTime now);
  std::string WhyNotJoined() const;

  const Clock& clock_;
  WorkerNodeOptions options_;
  void CheckHandshakes();

  protocol::PeerLink link_;  // the socket to the coordinator, its outbox and its bad frames
  // Before pool_: the pool (and the tests it kills) goes first, then the copies they ran from.
  ArtifactStore artifacts_;
  SubprocessPool pool_;
  std::map<uint64_t, std::unique_ptr<RunCoverage>> coverage_;  // by run
  struct OfferedProfile {
    std::unique_ptr<RunCoverage> coverage;  // keeps the merged file
    UniqueFd fd;
    uint64_t size = 0;
    std::string error;  // the merged file cannot be read
  };
  // Merged profiles being pulled by the coordinator, by run (the oldest run's dropped past 8;
  // all of them when the connection ends).
  std::map<uint64_t, OfferedProfile> offered_;
  SubprocessPool merges_;  // one slot: background llvm-profdata merges
  uint64_t next_merge_ = 0;
  std::map<uint64_t, uint64_t> merge_run_;   // merge token -> its run
  std::deque<protocol::JobAssign> waiting_;  // assigned, not yet started
  struct Running {
    uint64_t job_id = 0;
    std::string name;
    bool coverage = false;
    uint64_t run = 0;
  };
  std::map<uint64_t, Running> running_jobs_;  // by lease
  Liveness coordinator_;
  bool welcomed_ = false;
  bool stopping_ = false;
  std::optional<SteadyTime> drain_until_;  // draining: the moment the rest is handed back
  std::string join_failure_;               // the last handshake failure or refusal before joining
  std::string end_reason_;
  std::optional<SteadyTime> cache_measured_at_;
  bool measuring_cache_ = false;
  uint64_t cache_bytes_ = 0;
  // Hashing, blob commits, suite copies and cache measures, off the loop. Last, so it goes
  // first: its work in progress (which may be writing into artifacts_' directories) is waited
  // for, and its Dones (which touch artifacts_ and this node) never run.
  OffLoop off_loop_;
};

// "linux", "x86_64" for Hello.
std::string HostOs();
std::string HostArch();

}  // namespace testfarm::worker
