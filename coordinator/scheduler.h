#pragma once
// The scheduler decides which job goes to which worker and when a run is over. It is a passive
// state machine: no sockets, no processes, no clock reads except through the injected Clock.
// Events go in through the On*/Add*/Stop methods; the actions it wants performed (assign a job,
// cancel a lease) come out of TakeActions().
//
// A worker never holds more jobs than its slots plus the prefetch window. Which of them run is
// the worker's word: it says so when it starts one (OnStarted), and may start a later job before
// an earlier one whose files are still on their way. A running lease must report back within
// timeout + kill grace + slack of its start, or it expires: the job fails ("no result from
// worker") and the worker is told to cancel it. A lease the worker holds but has not started,
// though it has a slot free for it by its own word, gets the same allowance counted from the
// worker's last sign of progress (a start, a result, a file fetched): a worker that never
// starts it does not hold the run forever.
//
// Jobs may also wait for others (AddDependency: CTest DEPENDS and fixtures), exclude each other
// (locks: CTest RESOURCE_LOCK), occupy several slots (CTest PROCESSORS) and be pinned together
// to one worker (a fixture's setup, users and cleanup): see JobNeeds.
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "coordinator/latency_histogram.h"
#include "shared/clock.h"
#include "shared/defaults.h"

namespace testfarm::coordinator {

using WorkerId = std::string;
using JobId = uint64_t;
using LeaseId = uint64_t;
using Labels = std::map<std::string, std::string>;

struct SchedulerOptions {
  unsigned max_failures = 0;      // stop after this many failed jobs; 0: never
  unsigned max_lost_workers = 2;  // a job whose runs lost this many workers is not requeued
  // Jobs a worker may hold beyond its slots; unset: as many as it has slots (at least 2), so a
  // worker whose slots all free at once restarts every one without a round trip.
  std::optional<unsigned> prefetch;
  Millis kill_grace = kDefaultKillGrace;  // the worker's SIGTERM -> SIGKILL grace
  Millis lease_slack{10000};              // allowance for transport and bookkeeping
  // The first lease id: a farm gives each run its own range, so a worker's word about a lease
  // finds its run.
  LeaseId first_lease = 1;
};

struct AssignAction {
  WorkerId worker;
  LeaseId lease;
  JobId job;
};
struct CancelAction {
  WorkerId worker;
  LeaseId lease;
};
using Action = std::variant<AssignAction, CancelAction>;

// How one attempt ended, as far as scheduling is concerned. kPassed also stands for a test
// that skipped itself or was expected to fail: it is what jobs that must pass first look at.
enum class Verdict { kPassed, kFailed, kCancelled };

// What a job needs besides a free slot. The defaults ask for nothing.
struct JobNeeds {
  // Runs alone on its worker (CTest RUN_SERIAL): it is handed only to an idle worker, which then
  // gets nothing else until it reports.
  bool serial = false;
  // Slots it occupies on its worker (CTest PROCESSORS), at most the worker's slots. While a
  // worker holds a job of more than one slot, it holds no more than its slots can run at once:
  // no prefetch, so the worker (which starts whatever it holds) never runs more than it has.
  unsigned processors = 1;
  // Worker labels it requires (a job goes only to a worker carrying every one).
  Labels required_labels;
  // No two jobs sharing a lock name are outstanding at once, on any worker (CTest
  // RESOURCE_LOCK).
  std::vector<std::string> locks;
  // Jobs of one group run on one worker: the one that took the group's first job (a CTest
  // fixture's setup, its users and its cleanup share the state of one machine). If that worker
  // leaves, the group goes to whichever worker takes its next job.
  std::optional<uint64_t> group;
  // A retry: it goes to another worker than this one while there is another that could take it.
  std::optional<WorkerId> avoid;
};

// A job's final state.
// kSkipped: the test said so (GTEST_SKIP, SKIP_RETURN_CODE) or is disabled.
enum class JobState {
  kPending,
  kLeased,
  kPassed,
  kFailed,
  kCancelled,
  kExpired,
  kNotRun,
  kSkipped
};

class Scheduler {
 public:
  // `timeouts[i]` is job i's timeout (0: none); jobs are dispatched in index order.
  Scheduler(const Clock& clock, SchedulerOptions options, std::vector<Millis> timeouts = {});

  // Adds a job at the back of the queue (or the front: re-runs go first). Returns its id.
  JobId AddJob(Millis timeout, JobNeeds needs, bool front = false);
  // The same with JobNeeds{serial, required_labels}.
  JobId AddJob(Millis timeout, bool serial = false, bool front = false,
               Labels required_labels = {});
  // A job decided without running (it cannot start, it is disabled), in its final `state`: it
  // exists so that other jobs can depend on it.
  JobId AddEndedJob(JobState state);

  // `job` (still queued) starts only after `on` has ended, whichever way. With `must_pass`, it
  // runs only if `on` passed (kPassed or kSkipped); otherwise it ends as kNotRun and is listed
  // by TakeBlocked — and so, in turn, do the jobs that must pass after it. A job never waits
  // for itself; the caller keeps the dependencies free of cycles (a cycle never starts).
  void AddDependency(JobId job, JobId on, bool must_pass);
  struct Blocked {
    JobId job;      // ended as kNotRun, never started
    JobId because;  // the job it needed to pass, which did not
  };
  // Jobs that ended as kNotRun because a job they needed did not pass, since the last call.
  std::vector<Blocked> TakeBlocked();
  // How many more jobs the workers could take right now beyond those queued: lazily built jobs
  // (batches) are made only as fast as they can be handed out.
  std::size_t WantedJobs() const;
  unsigned total_slots() const;

  // `count` tests failed (a job may hold several): counts towards --fail-fast / --max-fail.
  void RecordFailures(unsigned count);

  // `labels`: what the worker offers; a job goes only to a worker carrying every label it requires.
  void AddWorker(const WorkerId& worker, unsigned slots, Labels labels = {});
  // How many of the worker's slots this run may fill (a farm shares them between runs): no new
  // job is assigned beyond it, nothing running is taken back. 0: none. Starts at `slots`.
  void SetGrant(const WorkerId& worker, unsigned grant);
  // Slots of the worker that other runs' started jobs occupy (a farm's runs share workers): a
  // job this run holds there is not taken to have a free slot while they are busy.
  void SetForeignBusy(const WorkerId& worker, unsigned busy);
  // Slots this run's started jobs occupy on the worker.
  unsigned StartedWeight(const WorkerId& worker) const;
  // Slots this run could use now, up to `cap`: what it holds plus what waits, ready, in its
  // queue (counted no further than the cap).
  std::size_t Demand(std::size_t cap) const;

  struct Removal {
    std::vector<JobId> cancelled;    // the run had stopped: they end as kCancelled
    std::vector<JobId> quarantined;  // running when their max_lost_workers-th worker was lost:
                                     // they end as kFailed and are not requeued
  };
  // A worker left (`lost` false) or died (`lost` true): its outstanding jobs go back to the
  // front of the queue, except as Removal says. A job counts a lost worker only if it was
  // running there (the worker said it started it) or may have been (one of the earliest held
  // leases filling the slots not known to be busy: the worker's `started` may have died with
  // it), not if it merely waited there.
  Removal RemoveWorker(const WorkerId& worker, bool lost = false);
  // What became of a lease a worker handed back.
  enum class HandedBack {
    kRefused,    // not a lease it holds unstarted: ignored
    kRequeued,   // its job is at the front of the queue again
    kCancelled,  // the run had stopped: the job ends as kCancelled
  };
  // The worker will not start `lease` (it is draining): its job goes back to the front of the
  // queue at once, not counted against it (a job that merely waited there is not blamed).
  HandedBack HandBack(const WorkerId& worker, LeaseId lease);
  // The names of the workers lost while running `job`.
  const std::vector<WorkerId>& LostWorkers(JobId job) const { return jobs_[job].lost_on; }

  // Queued jobs no connected worker can take (their required labels): for the caller to fail
  // once it has waited long enough for such a worker. They are removed from the queue.
  std::vector<JobId> TakeUnplaceable();
  bool HasWorker(const WorkerId& worker) const { return workers_.count(worker) != 0; }

  // Hands out jobs to every worker with credit. Call after any event.
  void Dispatch();

  // The job `worker` holds under `lease`; nullopt for a stale or unknown lease (see OnResult).
  std::optional<JobId> JobOf(const WorkerId& worker, LeaseId lease) const;

  // A worker reported the end of a lease. Returns the job if the result is accepted, nullopt for
  // a stale or unknown lease (reassigned, expired, or from the wrong worker): drop it. Failures
  // are counted by RecordFailures, not here.
  std::optional<JobId> OnResult(const WorkerId& worker, LeaseId lease, Verdict verdict);

  // Stop the run: no more dispatching; every outstanding lease is cancelled. Idempotent.
  void Stop(const std::string& reason);

  // Gives up on every outstanding lease (the run is stopping and the workers did not answer in
  // time): their jobs become kCancelled. Returns those jobs.
  std::vector<JobId> AbandonOutstanding();

  // Expires running leases whose deadline has passed. Returns the expired jobs.
  std::vector<JobId> OnTimers();

  // The worker started the lease's job: from now it runs, and its deadline counts. Returns false
  // for a stale or unknown lease, one of another worker, or one already started (ignored).
  bool OnStarted(const WorkerId& worker, LeaseId lease);
  // The worker is getting the files its jobs need (it fetched a piece of one): progress.
  void OnProgress(const WorkerId& worker);
  // From each started lease's assignment to its worker's word that it started (transport and
  // fetching its files included, and for a lease held ahead of a free slot, within the prefetch
  // window, the wait for one): one observation per OnStarted accepted.
  const LatencyHistogram& dispatch_latency() const { return dispatch_latency_; }
  std::optional<SteadyTime> NextDeadline() const;

  // The leases running now (their worker said so), each with the moment it started: for showing
  // what runs and which tests are slow.
  struct RunningLease {
    LeaseId lease = 0;
    JobId job = 0;
    WorkerId worker;
    SteadyTime since;
  };
  std::vector<RunningLease> Running() const;
  // What changed since the last call: leases started, then leases that ended after starting
  // (a lease may be in both). For following the running set without copying it.
  struct RunningChanges {
    std::vector<RunningLease> started;
    std::vector<LeaseId> ended;
  };
  RunningChanges TakeRunningChanges() { return std::exchange(running_changes_, {}); }

  std::vector<Action> TakeActions();

  // Every job has reached a final state (or was never started because the run stopped).
  bool Done() const;
  bool stopped() const { return stopped_; }
  const std::string& stop_reason() const { return stop_reason_; }
  JobState state(JobId job) const { return jobs_[job].state; }
  std::size_t job_count() const { return jobs_.size(); }
  unsigned failures() const { return failures_; }
  std::size_t outstanding() const { return leases_.size(); }

 private:
  struct Job {
    Millis timeout{0};
    JobNeeds needs;
    std::vector<WorkerId> lost_on;
    JobState state = JobState::kPending;
    unsigned attempts = 0;
    std::vector<JobId> waits_for;   // must have ended before this starts
    std::vector<JobId> must_pass;   // of those, the ones that must have passed
    std::vector<JobId> dependents;  // jobs that must pass after this one
  };
  struct Lease {
    JobId job;
    WorkerId worker;
    std::optional<SteadyTime> deadline;  // set when the worker starts it, if it has a timeout
    std::optional<SteadyTime> running_since = std::nullopt;  // set when the worker starts it
    SteadyTime assigned_at{};
  };
  struct Worker {
    unsigned slots = 1;
    unsigned grant = 1;         // of those, the ones this run may fill
    unsigned foreign_busy = 0;  // of those, the ones other runs' started jobs occupy
    Labels labels;
    std::deque<LeaseId> outstanding;  // in assignment order
    unsigned started_weight = 0;      // slots its started leases occupy
    SteadyTime last_progress{};       // joined, or last started, reported or fetched
  };
  // The held lease of `worker` that it should have started by now if it makes progress, and the
  // moment it is given up on: the earliest unstarted one with a timeout that fits the slots its
  // started leases leave free.
  std::optional<std::pair<LeaseId, SteadyTime>> HeldDeadline(const Worker& worker) const;
  bool CanTake(const Worker& worker, JobId job) const;
  unsigned StartedWeight(const Worker& worker) const;
  // Leases the worker may hold: its grant plus the prefetch window.
  std::size_t Credit(const Worker& worker) const;
  // Every job it waits for has ended.
  bool Ready(JobId job) const;
  // The slots `job` occupies on `worker`.
  unsigned Weight(const Worker& worker, JobId job) const;

  // The first queued job `worker` may take, or queue_.end(). `held_locks`: the locks of every
  // outstanding job.
  std::deque<JobId>::iterator Eligible(const WorkerId& id, const Worker& worker,
                                       const std::set<std::string>& held_locks);
  bool HoldsSerial(const Worker& worker) const;

  // Sets a final state; a job that did not pass takes down the jobs that must pass after it.
  void Finish(JobId job, JobState state);
  void Block(JobId job, JobId because);
  void ForgetLease(LeaseId lease);
  void MaybeStopForFailures();

  const Clock& clock_;
  SchedulerOptions options_;
  std::deque<Job> jobs_;  // a deque: a million jobs grow without copies or spare room
  std::deque<JobId> queue_;
  std::map<WorkerId, Worker> workers_;
  std::map<LeaseId, Lease> leases_;
  // The running leases with a deadline, soonest first: the timers look at the due ones only,
  // not at every lease (16,000 of them at a thousand workers) on every turn.
  std::set<std::pair<SteadyTime, LeaseId>> deadlines_;
  RunningChanges running_changes_;
  LatencyHistogram dispatch_latency_;
  bool any_locks_ = false;         // some job holds a lock (RESOURCE_LOCK)
  bool any_dependencies_ = false;  // some job waits for another
  bool any_timeouts_ = false;      // some job has a timeout (a held lease can expire)
  // Removes a lease, noting its end if it had started.
  void EraseLease(std::map<LeaseId, Lease>::iterator it);
  std::vector<Action> actions_;
  std::vector<Blocked> blocked_;
  std::map<uint64_t, WorkerId> pinned_;  // group -> the worker its jobs go to
  LeaseId next_lease_;
  unsigned failures_ = 0;
  bool stopped_ = false;
  std::string stop_reason_;
};

}  // namespace testfarm::coordinator
