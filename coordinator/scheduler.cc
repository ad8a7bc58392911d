#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

namespace testfarm::coordinator {

Scheduler::Scheduler(const Clock& clock, SchedulerOptions options, std::vector<Millis> timeouts)
    : clock_(clock), options_(options), next_lease_(options.first_lease) {
  jobs_.resize(timeouts.size());
  for (JobId id = 0; id < timeouts.size(); ++id) {
    jobs_[id].timeout = timeouts[id];
    any_timeouts_ = any_timeouts_ || timeouts[id].count() > 0;
    queue_.push_back(id);
  }
}

JobId Scheduler::AddJob(Millis timeout, JobNeeds needs, bool front) {
  JobId id = jobs_.size();
  Job job;
  job.timeout = timeout;
  any_timeouts_ = any_timeouts_ || timeout.count() > 0;
  job.needs = std::move(needs);
  job.needs.processors = std::max(1u, job.needs.processors);
  any_locks_ = any_locks_ || !job.needs.locks.empty();
  jobs_.push_back(std::move(job));
  if (stopped_) {
    jobs_[id].state = JobState::kNotRun;
  } else if (front) {
    queue_.push_front(id);
  } else {
    queue_.push_back(id);
  }
  return id;
}

JobId Scheduler::AddJob(Millis timeout, bool serial, bool front, Labels required_labels) {
  JobNeeds needs;
  needs.serial = serial;
  needs.required_labels = std::move(required_labels);
  return AddJob(timeout, std::move(needs), front);
}

JobId Scheduler::AddEndedJob(JobState state) {
  JobId id = jobs_.size();
  jobs_.emplace_back();
  jobs_[id].state = state;
  return id;
}

namespace {

bool Ended(JobState state) {
  return state != JobState::kPending && state != JobState::kLeased;
}

bool Succeeded(JobState state) {
  return state == JobState::kPassed || state == JobState::kSkipped;
}

}  // namespace

void Scheduler::AddDependency(JobId job, JobId on, bool must_pass) {
  if (job == on || job >= jobs_.size() || on >= jobs_.size()) return;
  jobs_[job].waits_for.push_back(on);
  any_dependencies_ = true;
  if (!must_pass) return;
  jobs_[job].must_pass.push_back(on);
  jobs_[on].dependents.push_back(job);
  if (Ended(jobs_[on].state) && !Succeeded(jobs_[on].state)) Block(job, on);
}

std::vector<Scheduler::Blocked> Scheduler::TakeBlocked() {
  return std::exchange(blocked_, {});
}

std::size_t Scheduler::WantedJobs() const {
  if (stopped_) return 0;
  std::size_t wanted = 0;
  for (const auto& [id, worker] : workers_) {
    std::size_t credit = Credit(worker);
    if (worker.outstanding.size() < credit) wanted += credit - worker.outstanding.size();
  }
  return wanted > queue_.size() ? wanted - queue_.size() : 0;
}

unsigned Scheduler::total_slots() const {
  unsigned slots = 0;
  for (const auto& [id, worker] : workers_) slots += worker.grant;
  return slots;
}

void Scheduler::RecordFailures(unsigned count) {
  failures_ += count;
  if (count > 0) MaybeStopForFailures();
}

bool Scheduler::HoldsSerial(const Worker& worker) const {
  for (LeaseId lease : worker.outstanding) {
    if (jobs_[leases_.at(lease).job].needs.serial) return true;
  }
  return false;
}

bool Scheduler::Ready(JobId job) const {
  return std::all_of(jobs_[job].waits_for.begin(), jobs_[job].waits_for.end(),
                     [&](JobId on) { return Ended(jobs_[on].state); });
}

unsigned Scheduler::Weight(const Worker& worker, JobId job) const {
  return std::min(jobs_[job].needs.processors, worker.slots);
}

std::deque<JobId>::iterator Scheduler::Eligible(const WorkerId& id, const Worker& worker,
                                                const std::set<std::string>& held_locks) {
  if (HoldsSerial(worker)) return queue_.end();
  // Slots taken by what the worker holds, and whether any of it needs more than one.
  unsigned held = 0;
  bool holds_heavy = false;
  for (LeaseId lease : worker.outstanding) {
    unsigned weight = Weight(worker, leases_.at(lease).job);
    held += weight;
    holds_heavy = holds_heavy || weight > 1;
  }
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    const Job& job = jobs_[*it];
    if (!CanTake(worker, *it) || !Ready(*it)) continue;
    if (job.needs.avoid == id &&
        std::any_of(workers_.begin(), workers_.end(), [&](const auto& other) {
          // Another worker that could really take it: labels, the group's pin, and slots this
          // run may fill there.
          if (other.first == id || !CanTake(other.second, *it) || Credit(other.second) == 0) {
            return false;
          }
          if (!job.needs.group) return true;
          auto pin = pinned_.find(*job.needs.group);
          return pin == pinned_.end() || pin->second == other.first;
        })) {
      continue;
    }
    if (job.needs.group) {
      auto pin = pinned_.find(*job.needs.group);
      if (pin != pinned_.end() && pin->second != id) continue;
    }
    if (std::any_of(job.needs.locks.begin(), job.needs.locks.end(),
                    [&](const std::string& lock) { return held_locks.count(lock) != 0; })) {
      continue;
    }
    if (job.needs.serial) {
      if (worker.outstanding.empty()) return it;
      continue;
    }
    unsigned weight = Weight(worker, *it);
    // With a job of several slots about, everything held must run at once: no prefetch.
    if ((weight > 1 || holds_heavy) && held + weight > worker.slots) continue;
    return it;
  }
  return queue_.end();
}

std::size_t Scheduler::Credit(const Worker& worker) const {
  if (worker.grant == 0) return 0;
  return worker.grant + options_.prefetch.value_or(std::max(worker.grant, 2u));
}

unsigned Scheduler::StartedWeight(const Worker& worker) const {
  return worker.started_weight;
}

unsigned Scheduler::StartedWeight(const WorkerId& worker) const {
  auto it = workers_.find(worker);
  return it == workers_.end() ? 0 : StartedWeight(it->second);
}

void Scheduler::SetForeignBusy(const WorkerId& worker, unsigned busy) {
  if (auto it = workers_.find(worker); it != workers_.end()) it->second.foreign_busy = busy;
}

void Scheduler::SetGrant(const WorkerId& worker, unsigned grant) {
  if (auto it = workers_.find(worker); it != workers_.end()) {
    it->second.grant = std::min(grant, it->second.slots);
  }
}

std::size_t Scheduler::Demand(std::size_t cap) const {
  if (stopped_) return 0;
  std::size_t demand = leases_.size();
  if (!any_dependencies_) return std::min(demand + queue_.size(), cap);  // every job is ready
  for (auto it = queue_.begin(); it != queue_.end() && demand < cap; ++it) {
    demand += Ready(*it) ? 1 : 0;
  }
  return std::min(demand, cap);
}

void Scheduler::AddWorker(const WorkerId& worker, unsigned slots, Labels labels) {
  workers_[worker].slots = std::max(1u, slots);
  workers_[worker].grant = workers_[worker].slots;
  workers_[worker].labels = std::move(labels);
  workers_[worker].last_progress = clock_.Now();
}

void Scheduler::OnProgress(const WorkerId& worker) {
  if (auto it = workers_.find(worker); it != workers_.end())
    it->second.last_progress = clock_.Now();
}

std::optional<std::pair<LeaseId, SteadyTime>> Scheduler::HeldDeadline(const Worker& worker) const {
  // Slots other runs of a farm keep busy on this worker are not free for ours either.
  unsigned busy = worker.foreign_busy + StartedWeight(worker);
  for (LeaseId id : worker.outstanding) {
    const Lease& lease = leases_.at(id);
    if (lease.running_since) continue;
    if (busy + Weight(worker, lease.job) > worker.slots) return std::nullopt;  // waits its turn
    Millis timeout = jobs_[lease.job].timeout;
    if (timeout.count() == 0) return std::nullopt;
    SteadyTime from = std::max(lease.assigned_at, worker.last_progress);
    return std::make_pair(id, from + timeout + options_.kill_grace + options_.lease_slack);
  }
  return std::nullopt;
}

bool Scheduler::CanTake(const Worker& worker, JobId job) const {
  for (const auto& [key, value] : jobs_[job].needs.required_labels) {
    auto it = worker.labels.find(key);
    if (it == worker.labels.end() || it->second != value) return false;
  }
  return true;
}

std::vector<JobId> Scheduler::TakeUnplaceable() {
  std::vector<JobId> unplaceable;
  for (JobId job : queue_) {
    bool placeable = std::any_of(workers_.begin(), workers_.end(),
                                 [&](const auto& w) { return CanTake(w.second, job); });
    if (!placeable) unplaceable.push_back(job);
  }
  // Off the queue first: finishing one may take its dependents off the queue too.
  for (JobId job : unplaceable) queue_.erase(std::find(queue_.begin(), queue_.end(), job));
  for (JobId job : unplaceable) Finish(job, JobState::kFailed);
  return unplaceable;
}

Scheduler::Removal Scheduler::RemoveWorker(const WorkerId& worker, bool lost) {
  Removal removal;
  auto it = workers_.find(worker);
  if (it == workers_.end()) return removal;
  std::deque<LeaseId>& outstanding = it->second.outstanding;
  // Which leases may have been running: those the worker said it started, and, since a
  // `started` can die with its worker (a test that kills it at once), the earliest held ones up
  // to its free slots. A job counts the loss only then: a killer test is not retried forever,
  // and a job that merely waited there is not blamed.
  std::set<LeaseId> maybe_running;
  // Slots, weighed as the jobs occupy them (PROCESSORS); other runs' started jobs hold theirs.
  unsigned started = StartedWeight(it->second) + it->second.foreign_busy;
  unsigned unknown = it->second.slots > started ? it->second.slots - started : 0;
  for (LeaseId id : outstanding) {
    unsigned weight = Weight(it->second, leases_.at(id).job);
    if (leases_.at(id).running_since) {
      maybe_running.insert(id);
    } else if (unknown >= weight) {
      maybe_running.insert(id);
      unknown -= weight;
    }
  }
  // Requeue in reverse so the earliest-assigned job ends up at the front.
  for (std::size_t i = outstanding.size(); i-- > 0;) {
    JobId job = leases_.at(outstanding[i]).job;
    EraseLease(leases_.find(outstanding[i]));
    if (lost && maybe_running.count(outstanding[i]) != 0) jobs_[job].lost_on.push_back(worker);
    if (stopped_) {
      Finish(job, JobState::kCancelled);
      removal.cancelled.push_back(job);
    } else if (jobs_[job].lost_on.size() >= std::max(1u, options_.max_lost_workers)) {
      Finish(job, JobState::kFailed);
      removal.quarantined.push_back(job);
    } else {
      jobs_[job].state = JobState::kPending;
      queue_.push_front(job);
    }
  }
  workers_.erase(it);
  // The group's state went with the worker; its remaining jobs go wherever the next one does.
  for (auto pin = pinned_.begin(); pin != pinned_.end();) {
    pin = pin->second == worker ? pinned_.erase(pin) : std::next(pin);
  }
  return removal;
}

void Scheduler::Dispatch() {
  if (stopped_) return;
  std::set<std::string> held_locks;
  if (any_locks_) {  // else not worth a walk over every lease
    for (const auto& [lease, info] : leases_) {
      held_locks.insert(jobs_[info.job].needs.locks.begin(), jobs_[info.job].needs.locks.end());
    }
  }
  for (auto& [id, worker] : workers_) {
    std::size_t credit = Credit(worker);
    while (worker.outstanding.size() < credit) {
      auto next = Eligible(id, worker, held_locks);
      if (next == queue_.end()) break;
      JobId job = *next;
      queue_.erase(next);
      const JobNeeds& needs = jobs_[job].needs;
      held_locks.insert(needs.locks.begin(), needs.locks.end());
      if (needs.group) pinned_.emplace(*needs.group, id);  // no-op if already pinned here
      LeaseId lease = next_lease_++;
      leases_[lease] = Lease{job, id, std::nullopt, std::nullopt, clock_.Now()};
      worker.outstanding.push_back(lease);
      jobs_[job].state = JobState::kLeased;
      ++jobs_[job].attempts;
      actions_.push_back(AssignAction{id, lease, job});
    }
  }
}

bool Scheduler::OnStarted(const WorkerId& worker, LeaseId lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.worker != worker || it->second.running_since) return false;
  Lease& lease = it->second;
  lease.running_since = clock_.Now();
  dispatch_latency_.Observe(*lease.running_since - lease.assigned_at);
  running_changes_.started.push_back({lease_id, lease.job, worker, *lease.running_since});
  if (auto held_by = workers_.find(worker); held_by != workers_.end()) {
    held_by->second.started_weight += Weight(held_by->second, lease.job);
  }
  OnProgress(worker);
  Millis timeout = jobs_[lease.job].timeout;
  if (timeout.count() > 0) {
    lease.deadline = clock_.Now() + timeout + options_.kill_grace + options_.lease_slack;
    deadlines_.emplace(*lease.deadline, lease_id);
  }
  return true;
}

Scheduler::HandedBack Scheduler::HandBack(const WorkerId& worker, LeaseId lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.worker != worker || it->second.running_since) {
    return HandedBack::kRefused;
  }
  JobId job = it->second.job;
  ForgetLease(lease_id);
  if (stopped_) {
    Finish(job, JobState::kCancelled);
    return HandedBack::kCancelled;
  }
  jobs_[job].state = JobState::kPending;
  queue_.push_front(job);
  return HandedBack::kRequeued;
}

void Scheduler::ForgetLease(LeaseId lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  auto worker = workers_.find(it->second.worker);
  EraseLease(it);
  if (worker == workers_.end()) return;
  auto& outstanding = worker->second.outstanding;
  outstanding.erase(std::remove(outstanding.begin(), outstanding.end(), lease_id),
                    outstanding.end());
}

void Scheduler::Finish(JobId job, JobState state) {
  jobs_[job].state = state;
  if (Succeeded(state)) return;
  // Copied: blocking edits other jobs, never this list, but keep it obviously safe.
  std::vector<JobId> dependents = jobs_[job].dependents;
  for (JobId dependent : dependents) Block(dependent, job);
}

void Scheduler::Block(JobId job, JobId because) {
  // Only a queued job: one that already ended (or the run stopped) keeps its state.
  if (jobs_[job].state != JobState::kPending) return;
  auto queued = std::find(queue_.begin(), queue_.end(), job);
  if (queued == queue_.end()) return;
  queue_.erase(queued);
  blocked_.push_back({job, because});
  Finish(job, JobState::kNotRun);
}

void Scheduler::MaybeStopForFailures() {
  if (options_.max_failures != 0 && failures_ >= options_.max_failures) {
    Stop(options_.max_failures == 1 ? "fail-fast" : "max-fail reached");
  }
}

std::optional<JobId> Scheduler::JobOf(const WorkerId& worker, LeaseId lease) const {
  auto it = leases_.find(lease);
  if (it == leases_.end() || it->second.worker != worker) return std::nullopt;
  return it->second.job;
}

std::optional<JobId> Scheduler::OnResult(const WorkerId& worker, LeaseId lease_id,
                                         Verdict verdict) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.worker != worker) return std::nullopt;
  JobId job = it->second.job;
  ForgetLease(lease_id);
  OnProgress(worker);
  switch (verdict) {
    case Verdict::kPassed:
      Finish(job, JobState::kPassed);
      break;
    case Verdict::kFailed:
      Finish(job, JobState::kFailed);
      break;
    case Verdict::kCancelled:
      Finish(job, JobState::kCancelled);
      break;
  }
  return job;
}

void Scheduler::Stop(const std::string& reason) {
  if (stopped_) return;
  stopped_ = true;
  stop_reason_ = reason;
  for (JobId job : queue_) jobs_[job].state = JobState::kNotRun;
  queue_.clear();
  for (const auto& [lease, info] : leases_) actions_.push_back(CancelAction{info.worker, lease});
}

std::vector<JobId> Scheduler::AbandonOutstanding() {
  std::vector<JobId> jobs;
  for (const auto& [lease, info] : leases_) {
    jobs.push_back(info.job);
    if (info.running_since) running_changes_.ended.push_back(lease);
  }
  leases_.clear();
  deadlines_.clear();
  for (auto& [id, worker] : workers_) {
    worker.outstanding.clear();
    worker.started_weight = 0;
  }
  for (JobId job : jobs) Finish(job, JobState::kCancelled);
  return jobs;
}

std::vector<JobId> Scheduler::OnTimers() {
  std::vector<JobId> expired;
  SteadyTime now = clock_.Now();
  std::vector<LeaseId> due;
  for (auto it = deadlines_.begin(); it != deadlines_.end() && it->first <= now; ++it) {
    due.push_back(it->second);
  }
  // A held lease has a deadline only if its job has a timeout.
  if (any_timeouts_) {
    for (const auto& [id, worker] : workers_) {
      if (auto held = HeldDeadline(worker); held && held->second <= now) {
        due.push_back(held->first);
      }
    }
  }
  for (LeaseId lease : due) {
    const Lease& info = leases_.at(lease);
    JobId job = info.job;
    actions_.push_back(CancelAction{info.worker, lease});
    ForgetLease(lease);
    expired.push_back(job);
    Finish(job, JobState::kExpired);
  }
  return expired;
}

std::optional<SteadyTime> Scheduler::NextDeadline() const {
  std::optional<SteadyTime> next;
  auto consider = [&](SteadyTime at) {
    if (!next || at < *next) next = at;
  };
  if (!deadlines_.empty()) consider(deadlines_.begin()->first);
  if (any_timeouts_) {
    for (const auto& [id, worker] : workers_) {
      if (auto held = HeldDeadline(worker)) consider(held->second);
    }
  }
  return next;
}

void Scheduler::EraseLease(std::map<LeaseId, Lease>::iterator it) {
  if (it->second.running_since) {
    running_changes_.ended.push_back(it->first);
    if (auto worker = workers_.find(it->second.worker); worker != workers_.end()) {
      worker->second.started_weight -= Weight(worker->second, it->second.job);
    }
  }
  if (it->second.deadline) deadlines_.erase({*it->second.deadline, it->first});
  leases_.erase(it);
}

std::vector<Scheduler::RunningLease> Scheduler::Running() const {
  std::vector<RunningLease> running;
  for (const auto& [id, lease] : leases_) {
    if (lease.running_since) running.push_back({id, lease.job, lease.worker, *lease.running_since});
  }
  return running;
}

std::vector<Action> Scheduler::TakeActions() {
  return std::exchange(actions_, {});
}

bool Scheduler::Done() const {
  return leases_.empty() && (queue_.empty() || stopped_);
}

}  // namespace testfarm::coordinator
