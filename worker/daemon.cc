#include "worker/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "protocol/poll_loop.h"
#include "shared/duration.h"
#include "shared/liveness.h"

namespace testfarm::worker {

namespace {

// Waits `delay` unless stop_fd fires first; true if it did. A deliberate pause between
// connection attempts: the wait ends on the signal fd or the deadline, whichever comes first.
// The health file (if any) says "connecting" meanwhile.
bool WaitOrStop(const Clock& clock, int stop_fd, Millis delay, HealthFile* health) {
  protocol::PollLoop loop(clock);
  bool stopped = false;
  loop.WatchFd(stop_fd, [&] { stopped = true; });
  SteadyTime until = clock.Now() + delay;
  loop.WakeBy([&] { return std::optional<SteadyTime>(until); });
  loop.WakeBy([&] { return health != nullptr ? health->NextRefresh() : std::nullopt; });
  while (!stopped && clock.Now() < until) {
    if (health != nullptr) health->Set("connecting", clock.Now());
    loop.Turn();
  }
  return stopped;
}

}  // namespace

int RunDaemon(zmq::context_t& context, const Clock& clock, const DaemonOptions& options) {
  const std::string& name = options.node.name;
  const std::string& endpoint = options.node.endpoint;
  Backoff backoff;
  // When the current series of attempts to (re)join began; --connect-timeout counts from there.
  SteadyTime trying_since = clock.Now();
  while (true) {
    WorkerNodeOptions node_options = options.node;
    if (options.connect_timeout) node_options.join_by = trying_since + *options.connect_timeout;
    Result<RunEnd> end = RunEnd::kStopped;
    std::string reason;
    bool stopping = false;
    {
      // A fresh node per connection: a new socket identity, an empty pool. Destroying it kills
      // whatever the previous run left running.
      WorkerNode node(context, clock, node_options);
      end = node.ServeOneRun();
      reason = node.end_reason();
      stopping = node.stopping();
    }
    if (!end) {
      spdlog::error("worker {}: {}", name, end.error().message);
      return 1;
    }
    // Told to stop while serving: it drained (or was draining when the run ended or the
    // coordinator was lost): done.
    if (stopping) return 0;
    Millis delay{0};
    switch (*end) {
      case RunEnd::kStopped:
      case RunEnd::kContextClosed:
        return 0;
      case RunEnd::kCoordinatorSaidBye:
        spdlog::info("worker {}: run finished", name);
        if (options.once) return 0;
        backoff.Reset();
        delay = backoff.Next();  // give the finished coordinator a moment to go away
        trying_since = clock.Now() + delay;
        break;
      case RunEnd::kCoordinatorLost:
        backoff.Reset();
        delay = backoff.Next();
        spdlog::warn("worker {}: lost the coordinator at {}: {}; reconnecting in {}", name,
                     endpoint, reason, FormatDuration(delay));
        trying_since = clock.Now();
        break;
      case RunEnd::kCannotJoin: {
        SteadyTime now = clock.Now();
        if (options.connect_timeout && now >= trying_since + *options.connect_timeout) {
          spdlog::error(
              "worker {}: cannot join the coordinator at {}: {}; gave up after {} "
              "(--connect-timeout)",
              name, endpoint, reason, FormatDuration(*options.connect_timeout));
          return 1;
        }
        delay = backoff.Next();
        if (options.connect_timeout) {
          // The last attempt still gets a moment before the bound.
          Millis left =
              std::chrono::duration_cast<Millis>(trying_since + *options.connect_timeout - now);
          delay = std::clamp(left - Millis(500), Millis(0), delay);
        }
        spdlog::warn("worker {}: cannot join the coordinator at {}: {}; retrying in {}", name,
                     endpoint, reason, FormatDuration(delay));
        break;
      }
    }
    if (WaitOrStop(clock, options.node.stop_fd, delay, options.node.health)) return 0;
  }
}

}  // namespace testfarm::worker
