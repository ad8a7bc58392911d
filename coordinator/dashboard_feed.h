#pragma once
// What the event loop hands a dashboard, and how: plain views of the fleet and of each run's
// tests, pushed into a DashboardSink that never waits on a browser. The loop builds a FleetView
// only when the sink says one is due (a few a second); a WatchedReporter passes each run's test
// reports on to the sink as they happen. Pure: no thread, no socket.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "coordinator/latency_histogram.h"
#include "coordinator/report.h"
#include "coordinator/run_core.h"
#include "shared/clock.h"

namespace testfarm::coordinator {

class FarmCore;

struct SlotView {
  std::string run;   // the run's id
  std::string test;  // the test, or "suite (batch)"
  int64_t since_ms = 0;
  friend bool operator==(const SlotView&, const SlotView&) = default;
};

struct WorkerView {
  std::string name;
  std::map<std::string, std::string> labels;
  unsigned slots = 0;
  int64_t heard_at_ms = 0;              // when it was last heard from (Unix ms)
  std::optional<uint64_t> cache_bytes;  // its blob cache, as it last said
  std::vector<SlotView> running;        // one per busy slot, longest running first
  bool draining = false;                // leaving: it takes no new tests
  friend bool operator==(const WorkerView&, const WorkerView&) = default;
};

struct RunView {
  std::string id;
  std::string label;
  std::string client;
  std::string state;  // waiting, running, stopping, finishing
  std::size_t tests = 0;
  unsigned slots = 0;      // slots it holds (its share)
  std::size_t queued = 0;  // of its tests, those waiting for a slot (all, while it waits)
  friend bool operator==(const RunView&, const RunView&) = default;
};

struct FleetView {
  int64_t at_ms = 0;  // Unix ms
  std::vector<WorkerView> workers;
  std::vector<RunView> runs;  // the runs the farm holds or has waiting
  // The farm's totals so far, which never go down (a standing farm's; a local run leaves them
  // empty): each started job's wait from its assignment to its start, and the bytes of test
  // files sent to workers.
  LatencyHistogram dispatch_latency;
  uint64_t bytes_shipped = 0;
};

struct RunStartView {
  std::string id;
  std::string label;
  std::string client;
  int64_t started_ms = 0;          // Unix ms; reports' times count from here
  std::vector<std::string> names;  // the selected tests, by index
  std::vector<Millis> expected;    // each test's expected duration from the history; empty: none
};

class DashboardSink {
 public:
  virtual ~DashboardSink() = default;
  // Whether the sink wants a FleetView now (it takes a few a second at most).
  virtual bool FleetDue(SteadyTime now) = 0;
  // When to wake to build the FleetView a FleetDue call turned down (so a change between two
  // views is shown within the interval, not at the next heartbeat); nullopt: none is owed.
  virtual std::optional<SteadyTime> NextFleetAt() const = 0;
  virtual void Fleet(FleetView view) = 0;
  virtual void RunStarted(RunStartView run) = 0;
  // The run's clock started: its reports' times count from now.
  virtual void RunBegan(const std::string& run) = 0;
  virtual void TestFinished(const std::string& run, const TestReport& report) = 0;
  virtual void RunEnded(const std::string& run, const RunSummary& summary) = 0;
};

// When a sink that takes a view at most every `every` wants one: FleetDue and NextFleetAt for a
// DashboardSink.
class FleetPacer {
 public:
  explicit FleetPacer(Millis every) : every_(every) {}
  // Whether a view is due now; if not, one is owed at NextAt.
  bool Due(SteadyTime now);
  std::optional<SteadyTime> NextAt() const;

 private:
  Millis every_;
  std::optional<SteadyTime> last_;
  bool owed_ = false;
};

// Two sinks fed as one (the dashboard and the metrics): each gets every event, and a fleet
// view when it said one was due.
class TeeSink : public DashboardSink {
 public:
  TeeSink(DashboardSink& first, DashboardSink& second) : first_(first), second_(second) {}
  bool FleetDue(SteadyTime now) override;
  std::optional<SteadyTime> NextFleetAt() const override;
  void Fleet(FleetView view) override;
  void RunStarted(RunStartView run) override;
  void RunBegan(const std::string& run) override;
  void TestFinished(const std::string& run, const TestReport& report) override;
  void RunEnded(const std::string& run, const RunSummary& summary) override;

 private:
  DashboardSink& first_;
  DashboardSink& second_;
  bool first_due_ = false;
  bool second_due_ = false;
};

// "running", "stopping" or "finishing": what `testfarm status` and the dashboard call a phase.
const char* RunStateWord(RunPhase phase);

// A run of `farm` as the dashboard sees it (its state, tests and slots held), named `id`.
RunView ViewOfRun(const FarmCore& farm, uint64_t run, std::string id, std::string label,
                  std::string client);

// The workers of `farm` and what runs on them, each lease named by its run's id in `run_ids`
// (runs not in it are left out).
std::vector<WorkerView> WorkersOf(const FarmCore& farm,
                                  const std::map<uint64_t, std::string>& run_ids, SteadyTime now,
                                  int64_t unix_now_ms);

// Passes everything on to `inner` and tells `sink` of each finished test and of the run's end.
class WatchedReporter : public ForwardingReporter {
 public:
  WatchedReporter(Reporter& inner, DashboardSink& sink, std::string run)
      : ForwardingReporter(inner), sink_(sink), run_(std::move(run)) {}
  void OnRunStart(std::size_t test_count) override {
    sink_.RunBegan(run_);
    inner_.OnRunStart(test_count);
  }
  void OnTestFinished(const TestReport& report, std::size_t running) override {
    sink_.TestFinished(run_, report);
    inner_.OnTestFinished(report, running);
  }
  void OnRunEnd(const RunSummary& summary) override {
    sink_.RunEnded(run_, summary);
    inner_.OnRunEnd(summary);
  }

 private:
  DashboardSink& sink_;
  std::string run_;
};

}  // namespace testfarm::coordinator
