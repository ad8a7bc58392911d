#pragma once
// How a farm shares its workers' slots between the runs it serves: max-min fair. Each run gets
// an equal share of the slots, a run that can use fewer than its share (its demand, capped by
// its --max-slots) gives the rest to the others, and slots nobody can use now are still handed
// out (up to each cap), so a run whose demand grows fills them without waiting for a rebalance.
// A run alone gets everything. Pure: the farm calls it whenever workers, runs or demands change.
#include <cstddef>
#include <vector>

namespace testfarm::coordinator {

struct RunDemand {
  std::size_t demand = 0;  // slots the run could fill now
  std::size_t cap = 0;     // at most this many slots in all; 0: no cap
  friend bool operator==(const RunDemand&, const RunDemand&) = default;
};

// grants[r][w]: how many of worker w's slots run r may fill. `eligible[r][w]`: whether run r
// has tests worker w can run (its labels); empty: every run can use every worker. A run's
// demand counts no more than the slots it is eligible for; the runs with the fewest eligible
// slots are served first, each from its eligible workers, and slots still free go to eligible
// runs below their caps. Runs earlier in `runs` (submitted earlier) get the odd slots when the
// division is not even; worker slots are dealt out in worker order, so a run's grants stay on
// the same workers while the shares do not change.
std::vector<std::vector<unsigned>> ShareSlots(const std::vector<unsigned>& worker_slots,
                                              std::vector<RunDemand> runs,
                                              const std::vector<std::vector<bool>>& eligible = {});

// Each run's total share (the quotas ShareSlots deals out), for tests and status.
std::vector<std::size_t> FairQuotas(std::size_t total_slots, const std::vector<RunDemand>& runs);

}  // namespace testfarm::coordinator
