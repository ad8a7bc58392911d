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
                                              const std::vector<RunDemand>& runs) {
  std::size_t total = 0;
  for (unsigned slots : worker_slots) total += slots;
  std::vector<std::size_t> quota = FairQuotas(total, runs);
  std::vector<std::vector<unsigned>> grants(runs.size(),
                                            std::vector<unsigned>(worker_slots.size(), 0));
  std::size_t r = 0;
  for (std::size_t w = 0; w < worker_slots.size(); ++w) {
    unsigned free = worker_slots[w];
    while (free > 0 && r < runs.size()) {
      unsigned give = static_cast<unsigned>(std::min<std::size_t>(free, quota[r]));
      grants[r][w] += give;
      quota[r] -= give;
      free -= give;
      if (quota[r] == 0) ++r;
    }
  }
  return grants;
}

}  // namespace testfarm::coordinator
