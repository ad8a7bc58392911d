#pragma once
// Which tests are running and which of them are slow (--slow-timeout): pure bookkeeping, no
// clock of its own. The run loop hands it the leases the scheduler started and ended since the
// last call, and the time; it answers which leases started, which crossed the slow threshold
// (each lease once), and when the next one will: the loop's poll timeout includes that moment,
// so a SLOW line comes on time without any periodic wake-up. Each call costs what changed (and
// a log factor), not what runs: a thousand workers keep sixteen thousand leases running.
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "coordinator/scheduler.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

class RunningTests {
 public:
  // `slow_after`: 0 means no test is ever slow.
  explicit RunningTests(Millis slow_after) : slow_after_(slow_after) {}

  struct Changes {
    std::vector<Scheduler::RunningLease> started;  // running now, not at the last call
    std::vector<Scheduler::RunningLease> slow;     // running for slow_after or more, newly
  };
  // `changes`: leases started, then leases ended, since the last call.
  Changes Update(const Scheduler::RunningChanges& changes, SteadyTime now);

  // When the next running lease will become slow; nullopt if none will (or none runs).
  std::optional<SteadyTime> NextSlowDeadline() const;
  // The lease running longest (earliest start; ties: the lowest lease), if any.
  std::optional<Scheduler::RunningLease> Longest() const;
  std::size_t count() const { return leases_.size(); }

 private:
  using ByStart = std::set<std::pair<SteadyTime, LeaseId>>;
  Millis slow_after_;
  std::map<LeaseId, Scheduler::RunningLease> leases_;
  ByStart by_start_;  // every running lease
  ByStart not_slow_;  // those not yet said slow
};

}  // namespace testfarm::coordinator
