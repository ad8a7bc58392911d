#include "coordinator/scheduler.h"

#include <algorithm>
#include <utility>

namespace testfarm::coordinator {

Scheduler::Scheduler(const Clock& clock, SchedulerOptions options, std::vector<Millis> timeouts)
    : clock_(clock), options_(options) {
  jobs_.resize(timeouts.size());
  for (JobId id = 0; id < timeouts.size(); ++id) {
    jobs_[id].timeout = timeouts[id];
    queue_.push_back(id);
  }
}

JobId Scheduler::AddJob(Millis timeout, bool serial, bool front, Labels required_labels) {
  JobId id = jobs_.size();
  Job job;
  job.timeout = timeout;
  job.serial = serial;
  job.required_labels = std::move(required_labels);
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

std::size_t Scheduler::WantedJobs() const {
  if (stopped_) return 0;
  std::size_t wanted = 0;
  for (const auto& [id, worker] : workers_) {
    std::size_t credit = worker.slots + options_.prefetch.value_or(std::max(worker.slots, 2u));
    if (worker.outstanding.size() < credit) wanted += credit - worker.outstanding.size();
  }
  return wanted > queue_.size() ? wanted - queue_.size() : 0;
}

unsigned Scheduler::total_slots() const {
  unsigned slots = 0;
  for (const auto& [id, worker] : workers_) slots += worker.slots;
  return slots;
}

void Scheduler::RecordFailures(unsigned count) {
  failures_ += count;
  if (count > 0) MaybeStopForFailures();
}

bool Scheduler::HoldsSerial(const Worker& worker) const {
  for (LeaseId lease : worker.outstanding) {
    if (jobs_[leases_.at(lease).job].serial) return true;
  }
  return false;
}

std::deque<JobId>::iterator Scheduler::Eligible(const Worker& worker) {
  if (HoldsSerial(worker)) return queue_.end();
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if (!CanTake(worker, *it)) continue;
    if (!jobs_[*it].serial || worker.outstanding.empty()) return it;
  }
  return queue_.end();
}

void Scheduler::AddWorker(const WorkerId& worker, unsigned slots, Labels labels) {
  workers_[worker].slots = std::max(1u, slots);
  workers_[worker].labels = std::move(labels);
}

bool Scheduler::CanTake(const Worker& worker, JobId job) const {
  for (const auto& [key, value] : jobs_[job].required_labels) {
    auto it = worker.labels.find(key);
    if (it == worker.labels.end() || it->second != value) return false;
  }
  return true;
}

std::vector<JobId> Scheduler::TakeUnplaceable() {
  std::vector<JobId> unplaceable;
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool placeable = std::any_of(workers_.begin(), workers_.end(),
                                 [&](const auto& w) { return CanTake(w.second, *it); });
    if (placeable) {
      ++it;
      continue;
    }
    Finish(*it, JobState::kFailed);
    unplaceable.push_back(*it);
    it = queue_.erase(it);
  }
  return unplaceable;
}

Scheduler::Removal Scheduler::RemoveWorker(const WorkerId& worker, bool lost) {
  Removal removal;
  auto it = workers_.find(worker);
  if (it == workers_.end()) return removal;
  std::deque<LeaseId>& outstanding = it->second.outstanding;
  std::size_t running = std::min<std::size_t>(it->second.slots, outstanding.size());
  // Requeue in reverse so the earliest-assigned job ends up at the front.
  for (std::size_t i = outstanding.size(); i-- > 0;) {
    JobId job = leases_.at(outstanding[i]).job;
    leases_.erase(outstanding[i]);
    if (lost && i < running) jobs_[job].lost_on.push_back(worker);
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
  return removal;
}

void Scheduler::Dispatch() {
  if (stopped_) return;
  for (auto& [id, worker] : workers_) {
    unsigned credit = worker.slots + options_.prefetch.value_or(std::max(worker.slots, 2u));
    while (worker.outstanding.size() < credit) {
      auto next = Eligible(worker);
      if (next == queue_.end()) break;
      JobId job = *next;
      queue_.erase(next);
      LeaseId lease = next_lease_++;
      leases_[lease] = Lease{job, id, std::nullopt};
      worker.outstanding.push_back(lease);
      jobs_[job].state = JobState::kLeased;
      ++jobs_[job].attempts;
      actions_.push_back(AssignAction{id, lease, job});
    }
    ArmRunningDeadlines(worker);
  }
}

void Scheduler::ArmRunningDeadlines(Worker& worker) {
  std::size_t running = std::min<std::size_t>(worker.slots, worker.outstanding.size());
  for (std::size_t i = 0; i < running; ++i) {
    Lease& lease = leases_.at(worker.outstanding[i]);
    if (!lease.running_since) lease.running_since = clock_.Now();
    Millis timeout = jobs_[lease.job].timeout;
    if (lease.deadline || timeout.count() == 0) continue;
    lease.deadline = clock_.Now() + timeout + options_.kill_grace + options_.lease_slack;
  }
}

void Scheduler::ForgetLease(LeaseId lease_id) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end()) return;
  auto worker = workers_.find(it->second.worker);
  leases_.erase(it);
  if (worker == workers_.end()) return;
  auto& outstanding = worker->second.outstanding;
  outstanding.erase(std::remove(outstanding.begin(), outstanding.end(), lease_id),
                    outstanding.end());
  ArmRunningDeadlines(worker->second);
}

void Scheduler::Finish(JobId job, JobState state) {
  jobs_[job].state = state;
}

void Scheduler::MaybeStopForFailures() {
  if (options_.max_failures != 0 && failures_ >= options_.max_failures) {
    Stop(options_.max_failures == 1 ? "fail-fast" : "max-fail reached");
  }
}

std::optional<JobId> Scheduler::OnResult(const WorkerId& worker, LeaseId lease_id,
                                         Verdict verdict) {
  auto it = leases_.find(lease_id);
  if (it == leases_.end() || it->second.worker != worker) return std::nullopt;
  JobId job = it->second.job;
  ForgetLease(lease_id);
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
  for (const auto& [lease, info] : leases_) jobs.push_back(info.job);
  leases_.clear();
  for (auto& [id, worker] : workers_) worker.outstanding.clear();
  for (JobId job : jobs) Finish(job, JobState::kCancelled);
  return jobs;
}

std::vector<JobId> Scheduler::OnTimers() {
  std::vector<JobId> expired;
  SteadyTime now = clock_.Now();
  std::vector<LeaseId> due;
  for (const auto& [lease, info] : leases_) {
    if (info.deadline && *info.deadline <= now) due.push_back(lease);
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

void Scheduler::StillPreparing(const WorkerId& worker_id) {
  auto worker = workers_.find(worker_id);
  if (worker == workers_.end()) return;
  std::size_t running =
      std::min<std::size_t>(worker->second.slots, worker->second.outstanding.size());
  for (std::size_t i = 0; i < running; ++i) {
    Lease& lease = leases_.at(worker->second.outstanding[i]);
    if (!lease.deadline) continue;
    SteadyTime from_now =
        clock_.Now() + jobs_[lease.job].timeout + options_.kill_grace + options_.lease_slack;
    lease.deadline = std::max(*lease.deadline, from_now);
  }
}

std::optional<SteadyTime> Scheduler::NextDeadline() const {
  std::optional<SteadyTime> next;
  for (const auto& [lease, info] : leases_) {
    if (info.deadline && (!next || *info.deadline < *next)) next = info.deadline;
  }
  return next;
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
