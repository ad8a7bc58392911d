#pragma once
// The scheduler decides which job goes to which worker and when a run is over. It is a passive
// state machine: no sockets, no processes, no clock reads except through the injected Clock.
// Events go in through the On*/Add*/Stop methods; the actions it wants performed (assign a job,
// cancel a lease) come out of TakeActions().
//
// A worker never holds more jobs than its slots plus the prefetch window. It starts the jobs it
// holds in the order they were assigned, so the first `slots` outstanding leases of a worker are
// the running ones; a running lease must report back within timeout + kill grace + slack, or it
// expires: the job fails ("no result from worker") and the worker is told to cancel it.
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "shared/clock.h"

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
  Millis kill_grace{2000};    // the worker's SIGTERM -> SIGKILL grace
  Millis lease_slack{10000};  // allowance for transport and bookkeeping
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

// How one attempt ended, as far as scheduling is concerned.
enum class Verdict { kPassed, kFailed, kCancelled };

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

  // Adds a job at the back of the queue (or the front: re-runs go first). A serial job runs
  // alone on its worker: it is handed only to an idle worker, which then gets nothing else
  // until it reports. Returns the job's id.
  JobId AddJob(Millis timeout, bool serial = false, bool front = false,
               Labels required_labels = {});
  // How many more jobs the workers could take right now beyond those queued: lazily built jobs
  // (batches) are made only as fast as they can be handed out.
  std::size_t WantedJobs() const;
  unsigned total_slots() const;

  // `count` tests failed (a job may hold several): counts towards --fail-fast / --max-fail.
  void RecordFailures(unsigned count);

  // `labels`: what the worker offers; a job goes only to a worker carrying every label it requires.
  void AddWorker(const WorkerId& worker, unsigned slots, Labels labels = {});

  struct Removal {
    std::vector<JobId> cancelled;    // the run had stopped: they end as kCancelled
    std::vector<JobId> quarantined;  // running when their max_lost_workers-th worker was lost:
                                     // they end as kFailed and are not requeued
  };
  // A worker left (`lost` false) or died (`lost` true): its outstanding jobs go back to the
  // front of the queue, except as Removal says. A job counts a lost worker only if it was
  // running there (among the worker's first `slots` leases), not merely queued.
  Removal RemoveWorker(const WorkerId& worker, bool lost = false);
  // The names of the workers lost while running `job`.
  const std::vector<WorkerId>& LostWorkers(JobId job) const { return jobs_[job].lost_on; }

  // Queued jobs no connected worker can take (their required labels): for the caller to fail
  // once it has waited long enough for such a worker. They are removed from the queue.
  std::vector<JobId> TakeUnplaceable();
  bool HasWorker(const WorkerId& worker) const { return workers_.count(worker) != 0; }

  // Hands out jobs to every worker with credit. Call after any event.
  void Dispatch();

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

  // The worker is still fetching the files its jobs need (it asked for a blob): its running
  // leases have not really started, so their deadlines count from now at the earliest. A test's
  // timeout is the test's, not its transfer's.
  void StillPreparing(const WorkerId& worker);
  std::optional<SteadyTime> NextDeadline() const;

  // The leases running now (among their worker's first `slots`), each with the moment it became
  // so: for showing what runs and which tests are slow.
  struct RunningLease {
    LeaseId lease = 0;
    JobId job = 0;
    WorkerId worker;
    SteadyTime since;
  };
  std::vector<RunningLease> Running() const;

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
    bool serial = false;
    Labels required_labels;
    std::vector<WorkerId> lost_on;
    JobState state = JobState::kPending;
    unsigned attempts = 0;
  };
  struct Lease {
    JobId job;
    WorkerId worker;
    std::optional<SteadyTime> deadline;  // set once the lease is among the worker's running ones
    std::optional<SteadyTime> running_since = std::nullopt;  // likewise
  };
  struct Worker {
    unsigned slots = 1;
    Labels labels;
    std::deque<LeaseId> outstanding;  // in assignment order
  };
  bool CanTake(const Worker& worker, JobId job) const;

  // The first queued job `worker` may take, or queue_.end().
  std::deque<JobId>::iterator Eligible(const Worker& worker);
  bool HoldsSerial(const Worker& worker) const;

  void Finish(JobId job, JobState state);
  void ForgetLease(LeaseId lease);
  void ArmRunningDeadlines(Worker& worker);
  void MaybeStopForFailures();

  const Clock& clock_;
  SchedulerOptions options_;
  std::vector<Job> jobs_;
  std::deque<JobId> queue_;
  std::map<WorkerId, Worker> workers_;
  std::map<LeaseId, Lease> leases_;
  std::vector<Action> actions_;
  LeaseId next_lease_ = 1;
  unsigned failures_ = 0;
  bool stopped_ = false;
  std::string stop_reason_;
};

}  // namespace testfarm::coordinator
