#pragma once
// Which tests are running and which of them are slow (--slow-timeout): pure bookkeeping, no
// clock of its own. The run loop hands it the scheduler's running leases and the time on every
// wake-up; it answers which leases started since the last call, which crossed the slow threshold
// (each lease once), and when the next one will: the loop's poll timeout includes that moment,
// so a SLOW line comes on time without any periodic wake-up.
#include <map>
#include <optional>
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
  // `running`: every lease running now. Leases absent from it are forgotten.
  Changes Update(const std::vector<Scheduler::RunningLease>& running, SteadyTime now);

  // When the next running lease will become slow; nullopt if none will (or none runs).
  std::optional<SteadyTime> NextSlowDeadline() const;
  // The lease running longest (earliest start; ties: the lowest lease), if any.
  std::optional<Scheduler::RunningLease> Longest() const;
  std::size_t count() const { return leases_.size(); }

 private:
  struct Tracked {
    Scheduler::RunningLease lease;
    bool slow_said = false;
  };
  Millis slow_after_;
  std::map<LeaseId, Tracked> leases_;
};

}  // namespace testfarm::coordinator
