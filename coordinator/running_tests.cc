#include "coordinator/running_tests.h"

namespace testfarm::coordinator {

RunningTests::Changes RunningTests::Update(const Scheduler::RunningChanges& changes,
                                           SteadyTime now) {
  Changes said;
  for (const Scheduler::RunningLease& lease : changes.started) {
    auto [it, added] = leases_.try_emplace(lease.lease, lease);
    if (!added) continue;
    said.started.push_back(lease);
    by_start_.emplace(lease.since, lease.lease);
    if (slow_after_.count() > 0) not_slow_.emplace(lease.since, lease.lease);
  }
  for (LeaseId id : changes.ended) {
    auto it = leases_.find(id);
    if (it == leases_.end()) continue;
    by_start_.erase({it->second.since, id});
    not_slow_.erase({it->second.since, id});
    leases_.erase(it);
  }
  while (!not_slow_.empty() && now - not_slow_.begin()->first >= slow_after_) {
    said.slow.push_back(leases_.at(not_slow_.begin()->second));
    not_slow_.erase(not_slow_.begin());
  }
  return said;
}

std::optional<SteadyTime> RunningTests::NextSlowDeadline() const {
  if (not_slow_.empty()) return std::nullopt;
  return not_slow_.begin()->first + slow_after_;
}

std::optional<Scheduler::RunningLease> RunningTests::Longest() const {
  if (by_start_.empty()) return std::nullopt;
  return leases_.at(by_start_.begin()->second);
}

}  // namespace testfarm::coordinator
