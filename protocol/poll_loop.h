#pragma once
// The one event loop every part of testfarm waits in: the coordinator, the worker node, the
// daemon between connections and the local runner. Register what to watch once — ZeroMQ sockets,
// raw fds, changing fd sets (a subprocess pool's pipes and pidfds) — and where deadlines come
// from; each Turn() waits for the first of them (the timeout is the nearest deadline, never a
// fixed tick) and calls the handlers of whatever became ready, in registration order. A signal
// interrupting the wait (EINTR) is "nothing ready". Handlers must not register new sources.
#include <functional>
#include <optional>
#include <vector>
#include <zmq.hpp>

#include "shared/clock.h"

namespace testfarm::protocol {

class PollLoop {
 public:
  explicit PollLoop(const Clock& clock) : clock_(clock) {}
  PollLoop(const PollLoop&) = delete;
  PollLoop& operator=(const PollLoop&) = delete;

  // A ZeroMQ socket (or a monitor's handle()). `events` is asked each turn (ZMQ_POLLIN,
  // ZMQ_POLLOUT; 0 leaves it out of that turn); `on_ready` gets the events that fired.
  void WatchSocket(void* socket, std::function<short()> events,
                   std::function<void(short revents)> on_ready);
  // Readable (or hung up) `fd`; ignored when fd < 0, so optional fds need no special case.
  void WatchFd(int fd, std::function<void()> on_ready);
  // A set of fds that changes from turn to turn: `collect` appends this turn's fds, `on_ready`
  // is called for each one that became readable (or hung up).
  void WatchFds(std::function<void(std::vector<int>*)> collect,
                std::function<void(int fd)> on_ready);
  // A source of deadlines (nullopt: none now); the wait ends by the earliest of them.
  void WakeBy(std::function<std::optional<SteadyTime>()> deadline);

  // Waits until something is ready or the nearest deadline passes (with neither: until
  // something is ready), then runs the handlers. Returns how many sources were ready. Socket
  // failures other than EINTR throw zmq::error_t, for the caller's boundary.
  int Turn();
  // The wait Turn() would use now: milliseconds until the nearest deadline, -1 for none.
  long TimeoutMs() const;
  // From a handler: the rest of this turn's handlers are not called (e.g. a stop request).
  void EndTurn() { end_turn_ = true; }

 private:
  struct Source {
    enum class Kind { kSocket, kFd, kFds } kind = Kind::kFd;
    void* socket = nullptr;
    int fd = -1;
    std::function<short()> events;
    std::function<void(short)> on_socket;
    std::function<void()> on_fd;
    std::function<void(std::vector<int>*)> collect;
    std::function<void(int)> on_fds;
  };

  const Clock& clock_;
  std::vector<Source> sources_;
  std::vector<std::function<std::optional<SteadyTime>()>> deadlines_;
  // Reused between turns: which source each poll item belongs to.
  std::vector<zmq_pollitem_t> items_;
  std::vector<std::size_t> owners_;
  std::vector<int> scratch_fds_;
  bool end_turn_ = false;
};

}  // namespace testfarm::protocol
