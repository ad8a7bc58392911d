#pragma once
// Liveness of a peer, Paranoid-Pirate style (zguide ch. 4): each side sends a heartbeat every
// `interval` when it has sent nothing else, and declares the other dead after `liveness`
// intervals of silence. Pure and clock-injected: it only answers "is it time to send?" and
// "is the peer dead?" for the times it is given.
#include <algorithm>
#include <optional>
#include <utility>

#include "shared/clock.h"

namespace testfarm {

struct LivenessOptions {
  Millis interval{1000};
  unsigned liveness = 3;
};

class Liveness {
 public:
  Liveness(LivenessOptions options, SteadyTime now)
      : options_(options), last_heard_(now), last_sent_(now) {}

  void Heard(SteadyTime now) { last_heard_ = now; }  // any message from the peer
  void Sent(SteadyTime now) { last_sent_ = now; }    // any message to the peer

  bool ShouldSendHeartbeat(SteadyTime now) const { return now >= last_sent_ + options_.interval; }
  bool Dead(SteadyTime now) const { return now >= DeadAt(); }
  SteadyTime last_heard() const { return last_heard_; }
  SteadyTime DeadAt() const { return last_heard_ + options_.interval * options_.liveness; }
  // The earlier of: the next heartbeat to send, the moment the peer counts as dead.
  SteadyTime NextDeadline() const {
    SteadyTime beat = last_sent_ + options_.interval;
    return beat < DeadAt() ? beat : DeadAt();
  }

 private:
  LivenessOptions options_;
  SteadyTime last_heard_;
  SteadyTime last_sent_;
};

// The other half of liveness: a loop that wakes at least once per interval (to send its
// heartbeats) and finds a longer gap since its last wake was itself not running (suspended,
// starved of CPU), so the peers' silence over that gap is its own and must not count against
// them. Pure: it is told the time of each wake.
class SuspensionGuard {
 public:
  explicit SuspensionGuard(LivenessOptions options) : options_(options) {}
  // The gap since the previous wake when it shows this process did not run; else nullopt.
  std::optional<Millis> Woke(SteadyTime now) {
    std::optional<SteadyTime> last = std::exchange(last_wake_, now);
    if (!last || now - *last <= 2 * options_.interval) return std::nullopt;
    return std::chrono::duration_cast<Millis>(now - *last);
  }

 private:
  LivenessOptions options_;
  std::optional<SteadyTime> last_wake_;
};

// Reconnect delays: 1 s, 2 s, 4 s ... up to a cap (32 s); Reset() after a good connection.
class Backoff {
 public:
  explicit Backoff(Millis first = Millis(1000), Millis cap = Millis(32000))
      : first_(first), cap_(cap), next_(first) {}
  Millis Next() {
    Millis delay = next_;
    next_ = std::min(cap_, next_ * 2);
    return delay;
  }
  void Reset() { next_ = first_; }

 private:
  Millis first_;
  Millis cap_;
  Millis next_;
};

}  // namespace testfarm
