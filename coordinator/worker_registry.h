#pragma once
// The workers a coordinator knows: who joined (name, slots, labels), whether each is alive
// (heartbeats both ways, Paranoid-Pirate style) and the name of every worker ever seen, for
// messages about one that is gone. Pure and clock-injected; it decides nothing about jobs.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"
#include "shared/liveness.h"

namespace testfarm::coordinator {

class WorkerRegistry {
 public:
  struct Worker {
    std::string name;
    unsigned slots = 0;
    std::map<std::string, std::string> labels;
    Liveness liveness;
    std::optional<uint64_t> cache_bytes;  // its blob cache, as its last heartbeat said
    bool draining = false;                // it said it is leaving: it takes no more jobs
    // The slots it offers to runs now: none while draining.
    unsigned offered() const { return draining ? 0 : slots; }
  };

  WorkerRegistry(const Clock& clock, LivenessOptions liveness)
      : clock_(clock), liveness_(liveness), suspension_(liveness) {}

  // `peer` joined now. False if it already had.
  bool Add(const std::string& peer, std::string name, unsigned slots,
           std::map<std::string, std::string> labels);
  void Remove(const std::string& peer);
  // `peer` is draining (protocol::Drain): false if it is not a worker or already was.
  bool SetDraining(const std::string& peer);

  const Worker* Find(const std::string& peer) const;
  bool Contains(const std::string& peer) const { return workers_.count(peer) != 0; }
  std::size_t size() const { return workers_.size(); }
  bool empty() const { return workers_.empty(); }
  std::vector<std::string> Peers() const;  // in a stable order

  // Any message from / to the peer (an unknown peer is ignored).
  void Heard(const std::string& peer);
  void Sent(const std::string& peer);
  void SetCacheBytes(const std::string& peer, uint64_t bytes);

  // The name of a peer that ever joined, else the peer's identity as is.
  std::string NameOf(const std::string& peer) const;
  // "worker NAME" for a peer that ever joined, else "a peer that has not joined".
  std::string Describe(const std::string& peer) const;

  struct Check {
    std::vector<std::string> heartbeat_due;  // alive, and nothing sent to them for an interval
    std::vector<std::string> dead;           // silent for liveness x interval
    std::optional<Millis> suspended_for;     // this process did not run for that long: nobody
                                             // is blamed for the silence it caused
  };
  // Call whenever the loop wakes (it wakes at least once per interval to send heartbeats).
  Check CheckLiveness();
  // The nearest heartbeat to send or death to declare, or a moment before it: a bound taken when
  // the workers were last looked at (hearing from a worker or sending to it only moves its
  // deadlines later). A wake at the bound looks at them all and takes it anew.
  std::optional<SteadyTime> NextDeadline() const;
  // How many times CheckLiveness looked at every worker.
  uint64_t liveness_scans() const { return liveness_scans_; }
  const LivenessOptions& liveness() const { return liveness_; }

 private:
  const Clock& clock_;
  LivenessOptions liveness_;
  SuspensionGuard suspension_;
  std::map<std::string, Worker> workers_;     // by peer
  std::map<std::string, std::string> names_;  // every peer that ever joined
  // No worker's next deadline is before this; empty: not known (a worker joined since).
  mutable std::optional<SteadyTime> earliest_;
  uint64_t liveness_scans_ = 0;
};

}  // namespace testfarm::coordinator
