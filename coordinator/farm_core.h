#pragma once
// The farm core: the workers and the runs they serve, with no socket and no clock of its own.
// It keeps the registry of workers (hello, welcome, heartbeats both ways, the dead and the
// departed), shares their slots between the runs (max-min fair, coordinator/fair_share.h) and
// routes each worker's word about a job to the run that owns the lease. Every mode is a farm:
// `testfarm run` is a farm of one run that ends with it; `testfarm serve` keeps its workers
// across runs.
//
// Inputs are peers' messages, undeliverable peers and the passing of time (Tick); outputs are
// messages to send (TakeOutbox), peers whose pending messages are stale (TakeGone) and the
// moment it must next be ticked (NextDeadline).
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/fair_share.h"
#include "coordinator/run_core.h"
#include "coordinator/worker_registry.h"
#include "protocol/messages.h"
#include "shared/clock.h"
#include "shared/liveness.h"

namespace testfarm::coordinator {

struct FarmOptions {
  // Heartbeats both ways; a worker silent for liveness x interval is dead and its jobs requeued.
  LivenessOptions liveness;
  // One run and done (`testfarm run`): a worker arriving once the run stopped dispatching is
  // told the run finished, and every worker is told goodbye when it ends. Otherwise (`serve`)
  // workers stay, idle, between runs.
  bool single_run = true;
};

using RunId = uint64_t;

struct RunLimits {
  std::size_t max_slots = 0;  // slots the run may fill at once, over all workers; 0: no cap
};

class FarmCore {
 public:
  FarmCore(const Clock& clock, FarmOptions options);

  // A run's leases come from its own range, so a worker's word about a lease finds the run:
  // build the run with options.scheduler.first_lease = FirstLease(id) for an id from NewRunId.
  RunId NewRunId() { return next_run_++; }
  static LeaseId FirstLease(RunId id) { return (id << kLeaseBits) + 1; }
  // Admits a started run: it is lent every worker, and a fair share of their slots.
  void AddRun(RunId id, std::unique_ptr<RunCore> run, RunLimits limits = {});
  RunCore* Run(RunId id);
  const RunCore* Run(RunId id) const;
  // Ends the run (RunCore::Finish) and lends its slots to the others.
  RunSummary FinishRun(RunId id);

  void OnMessage(const std::string& peer, protocol::Message& message);
  // A message to `peer` could not be delivered: it is gone, and its jobs are requeued.
  void OnUnreachable(const std::string& peer);
  // Time passed (and inputs were taken): liveness, shares, every run's Tick.
  void Tick();

  std::vector<Outgoing> TakeOutbox();
  // Workers gone since the last call: whatever still waits to be sent to them is stale.
  std::vector<std::string> TakeGone() { return std::exchange(gone_, {}); }
  bool HasOutgoing() const;
  std::optional<SteadyTime> NextDeadline() const;

  bool IsWorker(const std::string& peer) const { return workers_.Contains(peer); }
  // "worker NAME" for a peer that ever joined, else "a peer that has not joined".
  std::string Describe(const std::string& peer) const { return workers_.Describe(peer); }
  const WorkerRegistry& workers() const { return workers_; }
  // Slots of `peer` that run `id` may fill now.
  unsigned GrantOf(RunId id, const std::string& peer) const;
  // How many times the slots were shared out (each visits every worker of every run).
  uint64_t shares_made() const { return shares_made_; }
  // Every run's dispatch latencies, those of ended runs included: it never goes down.
  LatencyHistogram DispatchLatency() const;

 private:
  struct RunEntry {
    std::unique_ptr<RunCore> core;
    RunLimits limits;
    std::map<std::string, unsigned> grants;  // by worker peer
  };
  static constexpr unsigned kLeaseBits = 40;

  void OnHello(const std::string& peer, const protocol::Hello& hello);
  void RemoveWorker(const std::string& peer, const std::string& why, bool lost);
  void CheckWorkers();
  // Shares the slots again if the workers, the runs or their demands changed (runs are lent
  // workers they do not have yet), and tells each run what the others keep busy.
  void Rebalance();
  void Share(const std::vector<RunDemand>& demands);
  RunEntry* RunOfLease(uint64_t lease);
  void Send(const std::string& peer, protocol::Message message);

  const Clock& clock_;
  FarmOptions options_;
  WorkerRegistry workers_;
  std::map<RunId, RunEntry> runs_;  // in submission order
  LatencyHistogram ended_latency_;  // the dispatch latencies of runs that ended
  RunId next_run_ = 0;
  bool finished_one_ = false;  // single_run: the run has ended
  std::vector<Outgoing> outbox_;
  std::vector<std::string> gone_;
  bool rebalance_due_ = false;  // workers or runs came or went
  std::size_t total_slots_ = 0;
  std::vector<RunDemand> shared_for_;  // the demands the current shares were made for
  uint64_t shares_made_ = 0;
  std::set<std::string> busy_changed_;  // workers whose started jobs changed since
};

}  // namespace testfarm::coordinator
