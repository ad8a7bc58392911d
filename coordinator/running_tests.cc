#include "coordinator/running_tests.h"

#include <set>

namespace testfarm::coordinator {

RunningTests::Changes RunningTests::Update(const std::vector<Scheduler::RunningLease>& running,
                                           SteadyTime now) {
  Changes changes;
  std::set<LeaseId> present;
  for (const Scheduler::RunningLease& lease : running) {
    present.insert(lease.lease);
    auto [it, added] = leases_.try_emplace(lease.lease, Tracked{lease, false});
    if (added) changes.started.push_back(lease);
  }
  std::erase_if(leases_, [&](const auto& entry) { return present.count(entry.first) == 0; });
  if (slow_after_.count() <= 0) return changes;
  for (auto& [id, tracked] : leases_) {
    if (!tracked.slow_said && now - tracked.lease.since >= slow_after_) {
      tracked.slow_said = true;
      changes.slow.push_back(tracked.lease);
    }
  }
  return changes;
}

std::optional<SteadyTime> RunningTests::NextSlowDeadline() const {
  if (slow_after_.count() <= 0) return std::nullopt;
  std::optional<SteadyTime> next;
  for (const auto& [id, tracked] : leases_) {
    if (tracked.slow_said) continue;
    SteadyTime due = tracked.lease.since + slow_after_;
    if (!next || due < *next) next = due;
  }
  return next;
}

std::optional<Scheduler::RunningLease> RunningTests::Longest() const {
  std::optional<Scheduler::RunningLease> longest;
  for (const auto& [id, tracked] : leases_) {
    if (!longest || tracked.lease.since < longest->since) longest = tracked.lease;
  }
  return longest;
}

}  // namespace testfarm::coordinator
