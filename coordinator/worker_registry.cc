#include "coordinator/worker_registry.h"

namespace testfarm::coordinator {

bool WorkerRegistry::Add(const std::string& peer, std::string name, unsigned slots,
                         std::map<std::string, std::string> labels) {
  if (workers_.count(peer) != 0) return false;
  names_[peer] = name;
  workers_.emplace(peer, Worker{std::move(name), slots, std::move(labels),
                                Liveness(liveness_, clock_.Now()), std::nullopt});
  earliest_.reset();  // its deadlines were in no bound
  return true;
}

void WorkerRegistry::Remove(const std::string& peer) {
  workers_.erase(peer);
  if (workers_.empty()) earliest_.reset();  // nothing to wait for
}

bool WorkerRegistry::SetDraining(const std::string& peer) {
  auto it = workers_.find(peer);
  if (it == workers_.end() || it->second.draining) return false;
  it->second.draining = true;
  return true;
}

const WorkerRegistry::Worker* WorkerRegistry::Find(const std::string& peer) const {
  auto it = workers_.find(peer);
  return it == workers_.end() ? nullptr : &it->second;
}

std::vector<std::string> WorkerRegistry::Peers() const {
  std::vector<std::string> peers;
  for (const auto& [peer, worker] : workers_) peers.push_back(peer);
  return peers;
}

void WorkerRegistry::Heard(const std::string& peer) {
  if (auto it = workers_.find(peer); it != workers_.end()) it->second.liveness.Heard(clock_.Now());
}

void WorkerRegistry::Sent(const std::string& peer) {
  if (auto it = workers_.find(peer); it != workers_.end()) it->second.liveness.Sent(clock_.Now());
}

void WorkerRegistry::SetCacheBytes(const std::string& peer, uint64_t bytes) {
  if (auto it = workers_.find(peer); it != workers_.end()) it->second.cache_bytes = bytes;
}

std::string WorkerRegistry::NameOf(const std::string& peer) const {
  auto it = names_.find(peer);
  return it == names_.end() ? peer : it->second;
}

std::string WorkerRegistry::Describe(const std::string& peer) const {
  auto it = names_.find(peer);
  return it == names_.end() ? "a peer that has not joined" : "worker " + it->second;
}

WorkerRegistry::Check WorkerRegistry::CheckLiveness() {
  Check check;
  SteadyTime now = clock_.Now();
  if (auto gap = suspension_.Woke(now); gap && !workers_.empty()) {
    check.suspended_for = gap;
    for (auto& [peer, worker] : workers_) worker.liveness.Heard(now);
  }
  // Before the bound nothing can be due: the loop wakes on every message, a thousand workers
  // are not looked at on each wake.
  if (earliest_ && now < *earliest_) return check;
  ++liveness_scans_;
  std::optional<SteadyTime> next;
  for (const auto& [peer, worker] : workers_) {
    if (worker.liveness.Dead(now)) {
      check.dead.push_back(peer);
    } else if (worker.liveness.ShouldSendHeartbeat(now)) {
      check.heartbeat_due.push_back(peer);
    }
    SteadyTime at = worker.liveness.NextDeadline();
    if (!next || at < *next) next = at;
  }
  earliest_ = next;
  return check;
}

std::optional<SteadyTime> WorkerRegistry::NextDeadline() const {
  if (earliest_ || workers_.empty()) return earliest_;
  for (const auto& [peer, worker] : workers_) {
    SteadyTime at = worker.liveness.NextDeadline();
    if (!earliest_ || at < *earliest_) earliest_ = at;
  }
  return earliest_;
}

}  // namespace testfarm::coordinator
