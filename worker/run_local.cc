#include "worker/run_local.h"

#include <algorithm>

#include "protocol/poll_loop.h"

namespace testfarm::worker {

std::vector<FinishedJob> RunToCompletion(std::vector<LaunchSpec> specs, unsigned slots,
                                         std::size_t output_cap) {
  SteadyClock clock;
  PoolOptions options;
  options.output_cap = output_cap;
  options.slots = std::max(1u, slots);
  options.worker_name = "local";
  SubprocessPool pool(clock, options);
  std::vector<FinishedJob> results(specs.size());
  for (FinishedJob& result : results) result.state = ExitState::Cancelled("did not finish");
  std::size_t next = 0;
  std::size_t done = 0;
  protocol::PollLoop loop(clock);
  loop.WatchFds([&](std::vector<int>* fds) { pool.CollectFds(fds); },
                [&](int fd) { pool.OnFdReady(fd); });
  loop.WakeBy([&] { return pool.NextDeadline(); });
  try {
    while (true) {
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
      loop.Turn();
      pool.OnTimers();
    }
  } catch (const zmq::error_t&) {
    // poll itself failed: what has not finished stays "did not finish"; the pool kills it.
  }
  return results;
}

}  // namespace testfarm::worker
