#include "worker/daemon.h"

#include <spdlog/spdlog.h>

#include "protocol/wire.h"
#include "shared/duration.h"
#include "shared/liveness.h"

namespace testfarm::worker {

namespace {

// Waits `delay` unless stop_fd fires first; true if it did. A deliberate pause between
// connection attempts, not a poll loop: the wait ends on the signal fd.
bool WaitOrStop(int stop_fd, Millis delay) {
  zmq_pollitem_t item{nullptr, stop_fd, ZMQ_POLLIN, 0};
  protocol::Poll(&item, stop_fd >= 0 ? 1 : 0, static_cast<long>(delay.count()));
  return stop_fd >= 0 && item.revents != 0;
}

}  // namespace

int RunDaemon(zmq::context_t& context, const Clock& clock, const DaemonOptions& options) {
  Backoff backoff;
  while (true) {
    Result<RunEnd> end = RunEnd::kStopped;
    {
      // A fresh node per connection: a new socket identity, an empty pool. Destroying it kills
      // whatever the previous run left running.
      WorkerNode node(context, clock, options.node);
      end = node.ServeOneRun();
    }
    Millis delay{0};
    if (!end) {
      spdlog::error("worker {}: {}", options.node.name, end.error().message);
      return 1;
    }
    switch (*end) {
      case RunEnd::kStopped:
      case RunEnd::kContextClosed:
        return 0;
      case RunEnd::kCoordinatorSaidBye:
        spdlog::info("worker {}: run finished", options.node.name);
        if (options.once) return 0;
        backoff.Reset();
        delay = backoff.Next();  // give the finished coordinator a moment to go away
        break;
      case RunEnd::kCoordinatorLost:
        delay = backoff.Next();
        spdlog::warn("worker {}: reconnecting to {} in {}", options.node.name,
                     options.node.endpoint, FormatDuration(delay));
        break;
    }
    if (WaitOrStop(options.node.stop_fd, delay)) return 0;
  }
}

}  // namespace testfarm::worker
