#include "coordinator/farm_core.h"

#include <spdlog/spdlog.h>

#include "coordinator/fair_share.h"
#include "shared/duration.h"

namespace testfarm::coordinator {

FarmCore::FarmCore(const Clock& clock, FarmOptions options)
    : clock_(clock), options_(options), workers_(clock, options.liveness) {}

void FarmCore::AddRun(RunId id, std::unique_ptr<RunCore> run, RunLimits limits) {
  runs_[id] = RunEntry{std::move(run), limits, {}};
  rebalance_due_ = true;
  Rebalance();
}

RunCore* FarmCore::Run(RunId id) {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : it->second.core.get();
}

const RunCore* FarmCore::Run(RunId id) const {
  auto it = runs_.find(id);
  return it == runs_.end() ? nullptr : it->second.core.get();
}

unsigned FarmCore::GrantOf(RunId id, const std::string& peer) const {
  auto run = runs_.find(id);
  if (run == runs_.end()) return 0;
  auto grant = run->second.grants.find(peer);
  return grant == run->second.grants.end() ? 0 : grant->second;
}

RunSummary FarmCore::FinishRun(RunId id) {
  auto it = runs_.find(id);
  RunSummary summary = it->second.core->Finish();
  // What the run still wanted sent (a cancel, a profile request) goes out before it is gone.
  for (Outgoing& out : it->second.core->TakeOutbox()) outbox_.push_back(std::move(out));
  ended_latency_.Add(it->second.core->dispatch_latency());
  runs_.erase(it);
  if (options_.single_run) {
    finished_one_ = true;
    for (const std::string& peer : workers_.Peers()) Send(peer, protocol::Bye{"run finished"});
  }
  rebalance_due_ = true;
  return summary;
}

LatencyHistogram FarmCore::DispatchLatency() const {
  LatencyHistogram total = ended_latency_;
  for (const auto& [id, run] : runs_) total.Add(run.core->dispatch_latency());
  return total;
}

FarmCore::RunEntry* FarmCore::RunOfLease(uint64_t lease) {
  auto it = runs_.find(lease >> kLeaseBits);
  return it == runs_.end() ? nullptr : &it->second;
}

void FarmCore::Send(const std::string& peer, protocol::Message message) {
  outbox_.push_back(Outgoing{peer, std::move(message)});
}

void FarmCore::OnHello(const std::string& peer, const protocol::Hello& hello) {
  if (workers_.Contains(peer)) {
    spdlog::warn("coordinator: duplicate hello from worker {}; ignored", hello.worker_name);
    return;
  }
  if (hello.slots == 0) {
    Send(peer, protocol::ErrorReply{"hello: a worker needs at least one slot"});
    return;
  }
  if (options_.single_run) {
    // The run ended (or was stopped, or is collecting profiles) before this worker arrived.
    bool open = !finished_one_ && !runs_.empty() && runs_.begin()->second.core->AcceptsWorkers();
    if (!open) {
      Send(peer, protocol::Bye{"run finished"});
      return;
    }
  }
  workers_.Add(peer, hello.worker_name, hello.slots, hello.labels);
  Send(peer, protocol::Welcome{options_.single_run ? "run" : "farm"});
  rebalance_due_ = true;
  Rebalance();
}

void FarmCore::RemoveWorker(const std::string& peer, const std::string& why, bool lost) {
  if (!workers_.Contains(peer)) return;
  for (auto& [id, run] : runs_) {
    run.core->RemoveWorker(peer, why, lost);
    run.grants.erase(peer);
  }
  workers_.Remove(peer);
  gone_.push_back(peer);
  rebalance_due_ = true;
}

void FarmCore::OnUnreachable(const std::string& peer) {
  // Once a farm of one run is done, its report is written: a worker gone before its goodbye
  // changes nothing.
  if (finished_one_ || !workers_.Contains(peer)) return;
  spdlog::warn("coordinator: worker {} unreachable; requeueing its jobs", workers_.NameOf(peer));
  RemoveWorker(peer, "the worker became unreachable", /*lost=*/true);
}

void FarmCore::OnMessage(const std::string& peer, protocol::Message& message) {
  workers_.Heard(peer);
  auto progress = [&] {
    for (auto& [id, run] : runs_) run.core->OnWorkerProgress(peer);
  };
  auto to_lease_owner = [&](uint64_t lease) {
    if (!workers_.Contains(peer)) {
      spdlog::warn("coordinator: {} from an unknown worker dropped (lease {})",
                   protocol::TypeName(message), lease);
      return;
    }
    progress();
    if (RunEntry* run = RunOfLease(lease)) {
      run->core->OnMessage(peer, message);
      busy_changed_.insert(peer);
    } else {
      spdlog::info("coordinator: {} for lease {} of a run that has ended dropped",
                   protocol::TypeName(message), lease);
    }
  };
  if (auto* hello = std::get_if<protocol::Hello>(&message)) {
    OnHello(peer, *hello);
  } else if (auto* started = std::get_if<protocol::JobStarted>(&message)) {
    to_lease_owner(started->lease);
  } else if (auto* result = std::get_if<protocol::JobResult>(&message)) {
    to_lease_owner(result->lease);
  } else if (auto* handed = std::get_if<protocol::HandBack>(&message)) {
    to_lease_owner(handed->lease);
  } else if (auto* drain = std::get_if<protocol::Drain>(&message)) {
    // Its slots are shared out no more: every run's grant there drops to 0, so it is assigned
    // nothing new; what it holds finishes, or comes back (hand_back, bye).
    if (workers_.SetDraining(peer)) {
      spdlog::info("coordinator: {} is draining{}", workers_.Describe(peer),
                   drain->reason.empty() ? "" : " (" + drain->reason + ")");
      rebalance_due_ = true;
    }
  } else if (std::holds_alternative<protocol::Bye>(message)) {
    spdlog::info("coordinator: worker left");
    RemoveWorker(peer, "the worker left", /*lost=*/false);
  } else if (std::holds_alternative<protocol::Fetch>(message)) {
    // Served by the transport's owner; here it is progress towards starting a held job.
    if (workers_.Contains(peer)) progress();
  } else if (auto* beat = std::get_if<protocol::Heartbeat>(&message)) {
    // Heard() above is what a heartbeat is for; it also says how big the worker's cache is.
    workers_.SetCacheBytes(peer, beat->cache_bytes);
  } else if (auto* profile = std::get_if<protocol::ProfileChunk>(&message)) {
    if (!workers_.Contains(peer)) return;
    if (auto run = runs_.find(profile->run); run != runs_.end()) {
      run->second.core->OnMessage(peer, message);
    } else {
      spdlog::info("coordinator: a profile for run {}, which has ended, dropped", profile->run);
    }
  } else if (auto* request = std::get_if<protocol::SetRequest>(&message)) {
    if (!workers_.Contains(peer)) return;
    if (auto run = runs_.find(request->run); run != runs_.end()) {
      run->second.core->OnMessage(peer, message);
    } else {
      Send(peer, protocol::SetManifest{.run = request->run,
                                       .set = request->set,
                                       .root = {},
                                       .files = {},
                                       .library_dirs = {},
                                       .error = "the run has ended"});
    }
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    spdlog::error("coordinator: worker reported an error: {}", error->text);
    if (!workers_.Contains(peer)) return;
    for (auto& [id, run] : runs_) run.core->OnMessage(peer, message);
  } else {
    spdlog::warn("coordinator: unexpected {} message from a worker; ignored",
                 protocol::TypeName(message));
    Send(peer, protocol::ErrorReply{std::string("unexpected message type ") +
                                    protocol::TypeName(message)});
  }
}

void FarmCore::CheckWorkers() {
  WorkerRegistry::Check check = workers_.CheckLiveness();
  if (check.suspended_for) {
    spdlog::warn(
        "coordinator: the event loop did not get to the workers for {} (this process was busy, "
        "or not running); not counting it against them",
        FormatDuration(*check.suspended_for));
  }
  for (const std::string& peer : check.heartbeat_due) Send(peer, protocol::Heartbeat{});
  for (const std::string& peer : check.dead) {
    spdlog::warn("coordinator: worker {} silent for {} heartbeats; requeueing its jobs",
                 workers_.NameOf(peer), options_.liveness.liveness);
    RemoveWorker(peer, "its worker was lost", /*lost=*/true);
  }
}

void FarmCore::Rebalance() {
  // Workers or runs came or went: everything is shared anew.
  const bool membership = std::exchange(rebalance_due_, false);
  if (runs_.empty()) {
    busy_changed_.clear();
    return;
  }
  if (membership) {
    total_slots_ = 0;
    for (const std::string& peer : workers_.Peers()) total_slots_ += workers_.Find(peer)->offered();
  }
  std::vector<RunDemand> demands;
  for (const auto& [id, run] : runs_) {
    demands.push_back(RunDemand{run.core->Demand(total_slots_), run.limits.max_slots});
  }
  // The shares change only with the workers, the runs and what the runs could use; a run alone
  // gets every slot (up to its cap) whatever it could use, so its demand changing (every job
  // of a run's last thousands) changes nothing.
  if (membership || (runs_.size() > 1 && demands != shared_for_)) Share(demands);
  shared_for_ = std::move(demands);
  // Each run learns how much of each worker the others keep busy (a worker runs every run's
  // jobs in one pool): for the workers whose started jobs changed, or all of them when the
  // runs did. A run alone has no others.
  if (runs_.size() == 1 && !membership) {
    busy_changed_.clear();
    return;
  }
  auto tell = [&](const std::string& peer) {
    unsigned busy = 0;
    for (const auto& [id, run] : runs_) busy += run.core->StartedOn(peer);
    for (auto& [id, run] : runs_) run.core->SetForeignBusy(peer, busy - run.core->StartedOn(peer));
  };
  if (membership) {
    for (const std::string& peer : workers_.Peers()) tell(peer);
  } else {
    for (const std::string& peer : busy_changed_) {
      if (workers_.Contains(peer)) tell(peer);
    }
  }
  busy_changed_.clear();
}

void FarmCore::Share(const std::vector<RunDemand>& demands) {
  ++shares_made_;
  std::vector<std::string> peers = workers_.Peers();
  std::vector<unsigned> slots;
  for (const std::string& peer : peers) slots.push_back(workers_.Find(peer)->offered());
  std::vector<std::vector<bool>> eligible;
  for (const auto& [id, run] : runs_) {
    eligible.emplace_back();
    for (const std::string& peer : peers) {
      eligible.back().push_back(run.core->CanUse(workers_.Find(peer)->labels));
    }
  }
  std::vector<std::vector<unsigned>> grants = ShareSlots(slots, demands, eligible);
  std::size_t r = 0;
  for (auto& [id, run] : runs_) {
    for (std::size_t w = 0; w < peers.size(); ++w) {
      const std::string& peer = peers[w];
      unsigned grant = grants[r][w];
      auto known = run.grants.find(peer);
      if (known == run.grants.end()) {
        const WorkerRegistry::Worker* worker = workers_.Find(peer);
        run.core->AddWorker(peer, worker->name, worker->slots, worker->labels, grant);
        run.grants[peer] = grant;
      } else if (known->second != grant) {
        run.core->SetGrant(peer, grant);
        known->second = grant;
      }
    }
    ++r;
  }
}

void FarmCore::Tick() {
  if (finished_one_) return;
  CheckWorkers();
  Rebalance();
  for (auto& [id, run] : runs_) run.core->Tick();
}

std::vector<Outgoing> FarmCore::TakeOutbox() {
  std::vector<Outgoing> out = std::exchange(outbox_, {});
  for (auto& [id, run] : runs_) {
    for (Outgoing& message : run.core->TakeOutbox()) out.push_back(std::move(message));
  }
  for (const Outgoing& message : out) workers_.Sent(message.peer);
  return out;
}

bool FarmCore::HasOutgoing() const {
  if (!outbox_.empty() || !gone_.empty()) return true;
  for (const auto& [id, run] : runs_) {
    if (run.core->HasOutgoing()) return true;
  }
  return false;
}

std::optional<SteadyTime> FarmCore::NextDeadline() const {
  // A farm of one run has nothing left to keep alive once that run is done.
  if (options_.single_run &&
      (finished_one_ ||
       (!runs_.empty() && runs_.begin()->second.core->phase() == RunPhase::kDone))) {
    return std::nullopt;
  }
  std::optional<SteadyTime> next = workers_.NextDeadline();
  auto consider = [&](std::optional<SteadyTime> at) {
    if (at && (!next || *at < *next)) next = at;
  };
  if (rebalance_due_) consider(clock_.Now());
  for (const auto& [id, run] : runs_) consider(run.core->NextDeadline());
  return next;
}

}  // namespace testfarm::coordinator
