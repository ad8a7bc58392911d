#include "coordinator/dashboard_feed.h"

#include <algorithm>

#include "coordinator/farm_core.h"

namespace testfarm::coordinator {

bool FleetPacer::Due(SteadyTime now) {
  if (last_ && now - *last_ < every_) {
    owed_ = true;
    return false;
  }
  last_ = now;
  owed_ = false;
  return true;
}

std::optional<SteadyTime> FleetPacer::NextAt() const {
  if (!owed_ || !last_) return std::nullopt;
  return *last_ + every_;
}

bool TeeSink::FleetDue(SteadyTime now) {
  first_due_ = first_.FleetDue(now);
  second_due_ = second_.FleetDue(now);
  return first_due_ || second_due_;
}

std::optional<SteadyTime> TeeSink::NextFleetAt() const {
  std::optional<SteadyTime> first = first_.NextFleetAt();
  std::optional<SteadyTime> second = second_.NextFleetAt();
  if (!first) return second;
  if (!second) return first;
  return std::min(*first, *second);
}

void TeeSink::Fleet(FleetView view) {
  if (first_due_ && second_due_) {
    first_.Fleet(view);
    second_.Fleet(std::move(view));
  } else if (first_due_) {
    first_.Fleet(std::move(view));
  } else if (second_due_) {
    second_.Fleet(std::move(view));
  }
  first_due_ = second_due_ = false;
}

void TeeSink::RunStarted(RunStartView run) {
  first_.RunStarted(run);
  second_.RunStarted(std::move(run));
}

void TeeSink::RunBegan(const std::string& run) {
  first_.RunBegan(run);
  second_.RunBegan(run);
}

void TeeSink::TestFinished(const std::string& run, const TestReport& report) {
  first_.TestFinished(run, report);
  second_.TestFinished(run, report);
}

void TeeSink::RunEnded(const std::string& run, const RunSummary& summary) {
  first_.RunEnded(run, summary);
  second_.RunEnded(run, summary);
}

const char* RunStateWord(RunPhase phase) {
  switch (phase) {
    case RunPhase::kDispatching:
      return "running";
    case RunPhase::kStopping:
      return "stopping";
    case RunPhase::kCollectingProfiles:
    case RunPhase::kDone:
      break;
  }
  return "finishing";
}

RunView ViewOfRun(const FarmCore& farm, uint64_t run, std::string id, std::string label,
                  std::string client) {
  RunView view;
  view.id = std::move(id);
  view.label = std::move(label);
  view.client = std::move(client);
  if (const RunCore* core = farm.Run(run)) {
    view.state = RunStateWord(core->phase());
    view.tests = core->test_count();
    view.queued = core->TestsWaiting();
  }
  for (const std::string& peer : farm.workers().Peers()) view.slots += farm.GrantOf(run, peer);
  return view;
}

std::vector<WorkerView> WorkersOf(const FarmCore& farm,
                                  const std::map<uint64_t, std::string>& run_ids, SteadyTime now,
                                  int64_t unix_now_ms) {
  auto unix_of = [&](SteadyTime t) {
    return unix_now_ms - std::chrono::duration_cast<Millis>(now - t).count();
  };
  std::map<std::string, std::vector<SlotView>> running_on;  // by worker peer
  for (const auto& [id, name] : run_ids) {
    const RunCore* run = farm.Run(id);
    if (run == nullptr) continue;
    for (const RunCore::RunningTest& test : run->RunningNow()) {
      running_on[test.worker].push_back({name, test.test, unix_of(test.since)});
    }
  }
  std::vector<WorkerView> workers;
  for (const std::string& peer : farm.workers().Peers()) {
    const WorkerRegistry::Worker* worker = farm.workers().Find(peer);
    WorkerView view;
    view.name = worker->name;
    view.labels = worker->labels;
    view.slots = worker->slots;
    view.heard_at_ms = unix_of(worker->liveness.last_heard());
    view.cache_bytes = worker->cache_bytes;
    view.draining = worker->draining;
    if (auto it = running_on.find(peer); it != running_on.end()) {
      view.running = std::move(it->second);
      std::stable_sort(
          view.running.begin(), view.running.end(),
          [](const SlotView& a, const SlotView& b) { return a.since_ms < b.since_ms; });
    }
    workers.push_back(std::move(view));
  }
  return workers;
}

}  // namespace testfarm::coordinator
