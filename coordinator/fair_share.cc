#include "coordinator/fair_share.h"

#include <algorithm>
#include <limits>

namespace testfarm::coordinator {

namespace {

constexpr std::size_t kNoCap = std::numeric_limits<std::size_t>::max();

std::size_t CapOf(const RunDemand& run) {
  return run.cap == 0 ? kNoCap : run.cap;
}

// Water-filling: hands out `total` one level at a time to the runs still below `want[r]`,
// equal shares first, the remainder to the earliest runs.
void Fill(std::size_t& total, const std::vector<std::size_t>& want, std::vector<std::size_t>& got) {
  while (total > 0) {
    std::vector<std::size_t> open;
    for (std::size_t r = 0; r < want.size(); ++r) {
      if (got[r] < want[r]) open.push_back(r);
    }
    if (open.empty()) return;
    std::size_t each = total / open.size();
    if (each == 0) {  // fewer slots than runs wanting them: one each, earliest first
      for (std::size_t r : open) {
        if (total == 0) break;
        ++got[r];
        --total;
      }
      return;
    }
    for (std::size_t r : open) {
      std::size_t give = std::min(each, want[r] - got[r]);
      got[r] += give;
      total -= give;
    }
  }
}

}  // namespace

std::vector<std::size_t> FairQuotas(std::size_t total_slots, const std::vector<RunDemand>& runs) {
  std::vector<std::size_t> got(runs.size(), 0);
  std::vector<std::size_t> want(runs.size());
  // First what each run can use now, fairly; then the idle rest, fairly, up to each cap.
  for (std::size_t r = 0; r < runs.size(); ++r) want[r] = std::min(runs[r].demand, CapOf(runs[r]));
  std::size_t total = total_slots;
  Fill(total, want, got);
  for (std::size_t r = 0; r < runs.size(); ++r) want[r] = CapOf(runs[r]);
  Fill(total, want, got);
  return got;
}

std::vector<std::vector<unsigned>> ShareSlots(const std::vector<unsigned>& worker_slots,
                                              std::vector<RunDemand> runs,
                                              const std::vector<std::vector<bool>>& eligible) {
  auto can = [&](std::size_t r, std::size_t w) { return eligible.empty() || eligible[r][w]; };
  std::size_t total = 0;
  for (unsigned slots : worker_slots) total += slots;
  std::vector<std::size_t> reach(runs.size(), 0);  // slots each run is eligible for
  for (std::size_t r = 0; r < runs.size(); ++r) {
    for (std::size_t w = 0; w < worker_slots.size(); ++w)
      reach[r] += can(r, w) ? worker_slots[w] : 0;
    if (reach[r] == 0) {  // nothing it can use: it takes no share (its quota is zeroed below)
      runs[r].demand = 0;
      continue;
    }
    runs[r].demand = std::min(runs[r].demand, reach[r]);
    if (runs[r].cap == 0 || runs[r].cap > reach[r]) runs[r].cap = reach[r];
  }
  std::vector<std::size_t> quota = FairQuotas(total, runs);
  for (std::size_t r = 0; r < runs.size(); ++r) {
    if (reach[r] == 0) quota[r] = 0;
  }
  std::vector<std::vector<unsigned>> grants(runs.size(),
                                            std::vector<unsigned>(worker_slots.size(), 0));
  std::vector<unsigned> free = worker_slots;
  // The most constrained runs first (stable: submission order among equals).
  std::vector<std::size_t> order(runs.size());
  for (std::size_t r = 0; r < order.size(); ++r) order[r] = r;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return reach[a] < reach[b]; });
  std::vector<std::size_t> given(runs.size(), 0);
  for (std::size_t r : order) {
    for (std::size_t w = 0; w < worker_slots.size() && given[r] < quota[r]; ++w) {
      if (!can(r, w)) continue;
      unsigned give = static_cast<unsigned>(std::min<std::size_t>(free[w], quota[r] - given[r]));
      grants[r][w] += give;
      free[w] -= give;
      given[r] += give;
    }
  }
  // Slots left (a run could not reach its quota where it is eligible): to eligible runs below
  // their caps, one at a time, in submission order.
  for (std::size_t w = 0; w < worker_slots.size(); ++w) {
    bool gave = true;
    while (free[w] > 0 && gave) {
      gave = false;
      for (std::size_t r = 0; r < runs.size() && free[w] > 0; ++r) {
        if (!can(r, w) || reach[r] == 0 || given[r] >= runs[r].cap) continue;
        ++grants[r][w];
        --free[w];
        ++given[r];
        gave = true;
      }
    }
  }
  return grants;
}

}  // namespace testfarm::coordinator
