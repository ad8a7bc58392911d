#include "worker/run_local.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>

namespace testfarm::worker {

std::vector<FinishedJob> RunToCompletion(std::vector<LaunchSpec> specs, unsigned slots) {
  SteadyClock clock;
  PoolOptions options;
  options.slots = std::max(1u, slots);
  options.worker_name = "local";
  SubprocessPool pool(clock, options);
  std::vector<FinishedJob> results(specs.size());
  for (FinishedJob& result : results) result.state = ExitState::Cancelled("did not finish");
  std::size_t next = 0;
  std::size_t done = 0;
  std::vector<int> fds;
  std::vector<pollfd> items;
  while (done < specs.size()) {
    while (next < specs.size() && pool.HasFreeSlot()) {
      pool.Start(next, std::move(specs[next]));
      ++next;
    }
    for (FinishedJob& job : pool.TakeFinished()) {
      std::size_t index = job.token;
      results[index] = std::move(job);
      ++done;
    }
    if (done == specs.size()) break;
    fds.clear();
    pool.CollectFds(&fds);
    items.clear();
    for (int fd : fds) items.push_back({fd, POLLIN, 0});
    int timeout = -1;
    if (auto deadline = pool.NextDeadline()) {
      timeout = static_cast<int>(std::min<long>(MillisUntil(*deadline, clock.Now()), 1 << 30));
    }
    if (::poll(items.data(), items.size(), timeout) < 0 && errno != EINTR) break;
    for (const pollfd& item : items) {
      if (item.revents != 0) pool.OnFdReady(item.fd);
    }
    pool.OnTimers();
  }
  return results;
}

}  // namespace testfarm::worker
