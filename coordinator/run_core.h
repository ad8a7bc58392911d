#pragma once
// The run core: everything a run decides, with no socket, no file and no clock of its own. It
// holds the scheduler, the batcher, the workers its farm lends it (FarmCore: it decides who is
// alive and how many slots each run may fill) and the ledger of tests (each reported exactly
// once), and moves through explicit phases:
//
//   dispatching -> stopping (interrupt, fail-fast, every worker lost) -> collecting profiles
//   (--coverage) -> done
//
// Inputs are workers joining and leaving, their messages about the run's jobs, the user's
// interrupt and the passing of time (Tick), each at the injected clock's time; outputs are
// messages to send (TakeOutbox), the moment the core must next be ticked (NextDeadline) and the
// reporter's calls. A FarmCore feeds it (for `testfarm run`, a farm of one run); unit tests
// feed it by hand on a FakeClock.
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/artifacts.h"
#include "coordinator/batcher.h"
#include "coordinator/report.h"
#include "coordinator/running_tests.h"
#include "coordinator/scheduler.h"
#include "coordinator/test_ledger.h"
#include "coordinator/test_order.h"
#include "coordinator/test_spec.h"
#include "coordinator/worker_registry.h"
#include "protocol/messages.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// How often a run's selection runs: iterations of every test, each a test of its own (its copies
// may run at once). An iteration starts once the one before has been handed out entirely.
struct RepeatOptions {
  unsigned iterations = 1;  // at most this many; 0: no limit (--until-fail or a duration ends it)
  bool until_fail = false;  // no iteration starts after a test of an earlier one failed
  Millis duration{0};       // no iteration starts this long after the run started; 0: no limit
};

// What a run decides by: the policy half of the coordinator's options.
struct RunOptions {
  SchedulerOptions scheduler;
  // After the run stops (interrupt, fail-fast), how long to wait for cancelled jobs to report
  // beyond the kill grace before giving up on them.
  Millis stop_slack{5000};
  // --isolation batch: cases of one GoogleTest binary share processes.
  bool batch = false;
  BatcherOptions batcher;
  // Nothing is dispatched until this many workers have joined, or `wait_workers` has passed
  // (then the run goes on with whoever came; with nobody it stops). After `wait_workers`, tests
  // whose required labels no connected worker has fail.
  unsigned min_workers = 1;
  Millis wait_workers{0};
  // Coverage: tests write LLVM profiles; at the end each worker sends its merged profile.
  bool coverage = false;
  // --slow-timeout: a test running this long is reported slow (once); 0: never.
  Millis slow_timeout{0};
  // A test's START is said when it is handed to its worker, not when the worker says it began:
  // for --no-capture, where tests write to the terminal themselves (one slot, no prefetch) and
  // START must come before their output.
  bool start_at_assignment = false;
  // The run's number in its farm: jobs and profile requests carry it, so a worker serving
  // several runs keeps their coverage profiles apart.
  uint64_t run_id = 0;
  // The order tests start in: a permutation of their indices (from the history: failed last
  // time first, then longest first); empty: the order they were given in.
  std::vector<std::size_t> start_order;
  // --isolation batch: the expected time of a case of these GoogleTest suites (by suite name,
  // from the history), so their first batches are sized right.
  std::map<std::string, Millis> expected_case_time;
  // Repeats (--repeat, --until-fail, --stress-duration).
  RepeatOptions repeat;
};

enum class RunPhase { kDispatching, kStopping, kCollectingProfiles, kDone };

// A message for one peer (by its transport identity).
struct Outgoing {
  std::string peer;
  protocol::Message message;
};

// Keeps a worker's merged coverage profile, handed over a piece at a time as the pieces come, in
// order: `index` numbers the run's profiles (in the order their first pieces came), `data` goes
// at `offset` of the profile, which is `size` bytes in all. For the last piece (offset +
// data.size() == size) it returns where the profile went; for the others an empty path. An
// error ends that profile (the later pieces are not handed over).
using ProfileSink = std::function<Result<std::filesystem::path>(
    std::size_t index, uint64_t offset, uint64_t size, std::string_view data)>;

class RunCore {
 public:
  // `shipped[t]`: the files test t's job names for workers to fetch (nullptr or absent: none).
  // A job names its set by an id; a worker asks for the set's files once (SetRequest).
  RunCore(const Clock& clock, std::vector<TestSpec> tests, RunOptions options, Reporter& reporter,
          std::vector<const ArtifactSet*> shipped = {}, ProfileSink profiles = {});

  // The run starts now: the jobs are planned and the tests decided beforehand are reported.
  void Start();
  // Workers come and go through the farm that holds the run (FarmCore), which also keeps them
  // alive. A worker joined the run: it may fill `grant` of its `slots`.
  void AddWorker(const std::string& peer, const std::string& name, unsigned slots,
                 const std::map<std::string, std::string>& labels, unsigned grant);
  // The farm changed how many of the worker's slots this run may fill.
  void SetGrant(const std::string& peer, unsigned grant);
  // Slots of the worker other runs' started jobs occupy; and this run's own.
  void SetForeignBusy(const std::string& peer, unsigned busy) {
    scheduler_.SetForeignBusy(peer, busy);
  }
  unsigned StartedOn(const std::string& peer) const { return scheduler_.StartedWeight(peer); }
  // The worker is gone (`lost`: died or fell silent, which counts against the jobs it ran; else
  // it left): its jobs go back to the queue, or end cancelled once the run stops.
  void RemoveWorker(const std::string& peer, const std::string& why, bool lost);
  // It made progress on any run's job (started, finished or fetched): jobs it holds for this
  // run are still on their way.
  void OnWorkerProgress(const std::string& peer);
  // Whether a worker joining now could still get work (not once the run stops dispatching).
  bool AcceptsWorkers() const;
  // Slots this run could fill now, up to `cap`.
  std::size_t Demand(std::size_t cap) const;
  // Whether a worker with these labels can run any of the run's tests (their required labels).
  bool CanUse(const std::map<std::string, std::string>& labels) const;
  // A message from a worker of this run about the run's jobs or profiles (started, result,
  // profile chunk, error reply).
  void OnMessage(const std::string& peer, protocol::Message& message);
  // Credit for the profile sink (a farm relaying profiles to a client that acknowledges them):
  // `room()` says how many more pieces it can take now; the pieces asked of workers and not yet
  // here (each worker's first included), over all of them, stay below it. Unset: only the
  // per-worker window of 4.
  void SetProfileRoom(std::function<std::size_t()> room) { profile_room_ = std::move(room); }
  // The sink has room again: ask the workers for the pieces it held back.
  void ResumeProfiles();
  // The user interrupted: the first time the run stops gracefully (running tests are cancelled);
  // a second time, a second or more later, it stops waiting for them.
  void OnInterrupt();
  // Stops the run for `reason` (its client left, the farm is shutting down): running tests are
  // cancelled, the rest not run, as for an interrupt.
  void Stop(const std::string& reason);
  // The transport failed: nothing more can be sent or heard. Every outstanding test is
  // cancelled and the run is done.
  void Abort(const std::string& why);
  // Time passed (and inputs were taken): liveness, timeouts, dispatching, phase changes. Call
  // after every batch of inputs and whenever NextDeadline passes.
  void Tick();

  std::vector<Outgoing> TakeOutbox();
  bool HasOutgoing() const { return !outbox_.empty(); }
  // When Tick must next be called (now, after any input it has not seen); nullopt: only on
  // input.
  std::optional<SteadyTime> NextDeadline() const;
  RunPhase phase() const { return phase_; }
  std::size_t test_count() const { return tests_.size(); }
  // The counts so far (every report recorded up to now).
  const RunSummary& progress() const { return summary_; }
  // What runs now: one per started lease, longest running first.
  struct RunningTest {
    std::string worker;  // its peer
    std::string test;    // the test, or "suite (batch)"
    SteadyTime since;
  };
  std::vector<RunningTest> RunningNow() const;
  // Tests planned so far that wait for a slot: neither reported nor in a job its worker started
  // (those a worker holds but has not started count). 0 once the run stops dispatching.
  std::size_t TestsWaiting() const;
  // From each job's assignment to its worker's word that it started, over the run.
  const LatencyHistogram& dispatch_latency() const { return scheduler_.dispatch_latency(); }

  // Whether `peer` is a worker of this run now (it said hello and was not lost).
  bool IsWorker(const std::string& peer) const { return workers_.Contains(peer); }
  // "worker NAME" for a peer that ever joined, else "a peer that has not joined".
  std::string Describe(const std::string& peer) const { return workers_.Describe(peer); }

  // Ends the run: every test not yet reported is reported not run (with why) and the reporter
  // gets the summary.
  RunSummary Finish();

 private:
  struct Job {
    std::vector<std::size_t> tests;
    bool batch = false;
    unsigned attempt = 1;
    std::optional<GtestShard> shard;  // a batch run as one of gtest's shards
  };
  struct ProfileDownload {
    std::string name;
    uint64_t received = 0;  // bytes handed to the sink (never held here)
    bool done = false;
    bool asked_first = false;          // the first piece (offset 0) was asked for
    uint64_t next_request = 0;         // the offset to ask for next (after the first piece)
    unsigned in_flight = 0;            // pieces asked for, not yet here
    uint64_t size = 0;                 // the whole profile's, from the first piece
    std::optional<std::size_t> index;  // the sink's, from the first piece
    std::filesystem::path kept;        // where the sink put it, after the last piece
  };

  void PlanIteration(std::size_t first);  // tests [first, first + base_tests_)
  bool MoreIterations() const;
  // The test of the selection that test `t` is a copy of (itself in the first iteration).
  std::size_t BaseOf(std::size_t t) const { return base_tests_ == 0 ? t : t % base_tests_; }
  void StartIterationIfDue();
  void UntilFail(std::size_t t);  // test t failed for good
  JobId AddJob(std::vector<std::size_t> tests, bool batch, unsigned attempt, bool front,
               std::optional<WorkerId> avoid = std::nullopt);
  // Whether test `t`'s failed attempt runs again (--retries): it has retries left, the run still
  // dispatches, and no other test waits for it (CTest DEPENDS and fixtures wait for one result).
  bool Retries(std::size_t t) const;
  void RefillBatches();
  bool DispatchDone() const;
  void OnStarted(const std::string& peer, const protocol::JobStarted& started);
  void OnResult(const std::string& peer, protocol::JobResult& result);
  void OnProfileChunk(const std::string& peer, protocol::ProfileChunk& chunk);
  void OnSetRequest(const std::string& peer, const protocol::SetRequest& request);
  void OnHandBack(const std::string& peer, const protocol::HandBack& handed);
  // Asks the worker for more pieces of its profile: up to 4 in flight, and, with a profile room,
  // no more than the sink has room for over all downloads.
  void AskProfilePieces(const std::string& peer, ProfileDownload& download);
  // What the download had asked for will not come (its worker is gone): it no longer counts
  // against the sink's room. The download stays unfinished.
  void ReleaseRoom(ProfileDownload& download);
  // The download is over (whole, or failed): done, and its room released.
  void FinishDownload(ProfileDownload& download);
  // The id jobs name `set` by (given at its first job).
  uint64_t SetIdOf(const ArtifactSet* set);
  bool DispatchOpen();
  void StopIfNoWorkerCanCome();
  void FailUnplaceable();
  void PerformActions();
  void ReportBlocked();
  // `cases` (of one GoogleTest binary, in any order) are every runnable case it lists.
  bool IsWholeBinary(const std::vector<std::size_t>& cases) const;
  void WarnIfClamped(std::size_t test, const std::string& peer);
  void WatchRunning();
  std::string JobName(JobId job) const;
  void StartCollectingProfiles();
  void EndCollectingProfiles();
  void AbandonOutstanding(const std::string& why);
  void Send(const std::string& peer, protocol::Message message);

  // Into the ledger (a test is reported once; later calls for it are ignored).
  void Report(std::size_t test, TestReport report, const protocol::JobResult* result = nullptr);
  void ReportJob(JobId job, TestStatus status, const std::string& reason);

  const Clock& clock_;
  std::vector<TestSpec> tests_;
  RunOptions options_;
  Reporter& reporter_;
  std::vector<const ArtifactSet*> shipped_;
  std::map<const ArtifactSet*, uint64_t> set_ids_;
  std::vector<const ArtifactSet*> sets_by_id_;  // id - 1
  ProfileSink profile_sink_;
  std::function<std::size_t()> profile_room_;  // see SetProfileRoom

  Scheduler scheduler_;
  RunningTests running_;
  Batcher batcher_;
  RunPhase phase_ = RunPhase::kDispatching;
  bool tick_due_ = false;  // an input came since the last Tick
  std::vector<Outgoing> outbox_;

  std::map<std::size_t, std::size_t> batch_suite_of_;  // test -> batcher suite
  std::deque<Job> jobs_;  // by scheduler JobId; a deque: grows without copies or spare room
  TestOrder order_;       // DEPENDS and fixtures among tests_
  std::vector<unsigned> failed_attempts_;  // per test: attempts that failed
  std::size_t base_tests_ = 0;             // the selection; then its iterations
  unsigned iterations_ = 1;                // started so far
  std::optional<SteadyTime> stress_ends_;  // --stress-duration
  bool until_fail_stopped_ = false;
  std::string until_fail_reason_;
  std::vector<bool> awaited_;  // per test: another test waits for it
  std::map<std::pair<std::size_t, std::size_t>, std::string>
      fixture_of_;                      // (user, setup) -> the fixture the user requires
  std::set<std::size_t> clamp_warned_;  // tests warned about PROCESSORS
  std::vector<std::map<std::string, std::string>> label_needs_;  // distinct required labels
  WorkerRegistry workers_;
  bool dispatch_open_ = false;

  TestLedger ledger_;  // after tests_, which it reads
  RunSummary& summary_ = ledger_.summary();
  std::optional<SteadyTime> give_up_at_;  // set once the run is stopping
  std::optional<SteadyTime> first_interrupt_at_;

  std::map<std::string, ProfileDownload> profiles_;  // by peer, once requested
  std::size_t profile_in_flight_ = 0;                // over every download
  std::size_t next_profile_index_ = 0;
  std::map<std::string, uint64_t> raw_profiles_;  // by peer: its tests' raw profiles
  std::optional<SteadyTime> profile_deadline_;    // while collecting profiles
  SteadyTime profiles_asked_at_;

  static constexpr Millis kSecondSignalAfter{1000};
  static constexpr Millis kProfileWait{10 * 60 * 1000};  // bound on collecting profiles
};

}  // namespace testfarm::coordinator
