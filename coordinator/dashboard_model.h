#pragma once
// What the dashboard shows, kept by the HTTP side: the fleet as the event loop last saw it, each
// run's tests with their status, the output of their attempts (bounded), a timeline of finished
// attempts, and logs of what changed so a live stream sends only that. Events come in (Apply),
// JSON goes out (the queries). Pure: no thread, no clock (times come with the events and the
// queries), so every answer is a unit test.
#include <cstdint>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "coordinator/dashboard_feed.h"
#include "coordinator/report.h"
#include "coordinator/test_status.h"

namespace testfarm::coordinator {

struct DashboardLimits {
  std::size_t output_tail = 64 * 1024;      // of each attempt's stdout and of its stderr
  std::size_t output_budget = 64ull << 20;  // all attempts' output together
  std::size_t ended_runs = 20;              // runs kept after they end
  std::size_t ended_tests = 200000;         // ... and their tests together at most
  std::size_t spans_per_run = 20000;        // timeline spans kept per run
  std::size_t change_log = 5000;            // failures and spans kept for live streams
};

// A finished attempt, as the dashboard keeps it: a TestReport without the bulk (the output's
// tail only), made on the event loop's thread.
struct FinishedTest {
  std::size_t index = 0;
  std::string name;
  TestStatus state = TestStatus::kNotRun;
  std::string result;  // the console's word: PASS, FAIL, CRASH, ...
  std::string reason;
  std::string message;
  int64_t duration_ms = 0;
  std::string worker;
  unsigned attempt = 1;
  unsigned iteration = 1;
  bool retried = false;
  bool ran = false;  // a process ran it: it has a place on the timeline
  std::optional<uint64_t> peak_rss_kb;
  int64_t started_ms = 0;  // since the run started
  int64_t finished_ms = 0;
  std::string out;  // the tail of its stdout
  std::string err;
};
FinishedTest Compact(const TestReport& report, std::size_t output_tail);

// The tests of a run by status word ("passed", "failed", "lost", ...), counting the last
// attempt of each test.
struct RunCounts {
  std::map<std::string, std::size_t> by_status;
  std::size_t finished = 0;
};
RunCounts CountsOf(const RunSummary& summary);

struct TestDoneEvent {
  std::string run;
  FinishedTest test;
};
// The run's clock started (reports' times count from here).
struct RunBeganEvent {
  std::string run;
  int64_t started_ms = 0;
};
struct RunEndEvent {
  std::string run;
  RunCounts counts;
  std::string summary;  // the console's last line
  std::string stop_reason;
  int64_t ended_ms = 0;
};
using DashboardEvent =
    std::variant<FleetView, RunStartView, RunBeganEvent, TestDoneEvent, RunEndEvent>;

// What the process serving the dashboard says of itself.
struct FarmInfo {
  std::string mode;  // "serve" or "run"
  std::string version;
  int64_t started_ms = 0;
  bool history = false;
  std::size_t streams = 0;
  std::size_t streams_dropped = 0;
};

struct TestsQuery {
  std::vector<std::string> statuses;  // empty: all
  std::string contains;
  std::size_t offset = 0;
  std::size_t limit = 100;
};

// Where a live stream is: what it has been sent.
struct StreamCursor {
  uint64_t version = 0;
  uint64_t failure_seq = 0;
  uint64_t span_seq = 0;
};

class DashboardModel {
 public:
  explicit DashboardModel(DashboardLimits limits = {}) : limits_(limits) {}

  void Apply(DashboardEvent event);
  uint64_t version() const { return version_; }
  bool HasRun(const std::string& run) const { return Find(run) != nullptr; }

  nlohmann::json Farm(const FarmInfo& info, int64_t now_ms) const;
  nlohmann::json Workers(std::size_t offset, std::size_t limit, int64_t now_ms) const;
  nlohmann::json Runs(int64_t now_ms) const;
  // nullopt: no such run (or no such test).
  std::optional<nlohmann::json> Tests(const std::string& run, const TestsQuery& query) const;
  std::optional<nlohmann::json> Output(const std::string& run, std::size_t index) const;
  std::optional<nlohmann::json> Timeline(const std::string& run, int64_t since_ms,
                                         int64_t now_ms) const;
  // A live stream's first event (everything), and each later one (what changed since `cursor`;
  // null when nothing did). Both move the cursor.
  nlohmann::json Snapshot(const FarmInfo& info, int64_t now_ms, StreamCursor* cursor) const;
  nlohmann::json Update(const FarmInfo& info, int64_t now_ms, StreamCursor* cursor) const;

  std::size_t output_bytes() const { return output_bytes_; }

 private:
  enum class Phase : uint8_t { kQueued, kRunning, kFinal };
  struct Row {
    Phase phase = Phase::kQueued;
    TestStatus state = TestStatus::kNotRun;
    std::string result;
    std::string reason;
    std::optional<int64_t> duration_ms;
    std::string worker;
    unsigned attempt = 0;
    unsigned iteration = 1;
    std::optional<uint64_t> peak_rss_kb;
  };
  // One finished attempt's own: what the row does not say, and its output.
  struct Attempt {
    unsigned attempt = 1;
    unsigned iteration = 1;
    bool retried = false;
    bool kept = true;  // its output (dropped over the budget)
    int64_t duration_ms = 0;
    std::string result;
    std::string reason;
    std::string worker;
    std::string out;
    std::string err;
    std::string message;
    std::size_t bytes() const { return out.size() + err.size() + message.size(); }
  };
  struct Span {
    std::string worker;
    std::size_t lane = 0;
    std::size_t index = 0;
    int64_t start_ms = 0;
    int64_t end_ms = 0;
    std::string status;
  };
  struct Run {
    std::string id;
    std::string label;
    std::string client;
    std::string state = "waiting";
    std::size_t tests = 0;
    unsigned slots = 0;
    std::size_t running = 0;
    int64_t started_ms = 0;
    bool started = false;
    std::optional<int64_t> ended_ms;
    std::string summary;
    std::string stop_reason;
    std::deque<std::string> names;  // a deque: growing it moves no name `by_name` points into
    std::vector<Row> rows;
    std::unordered_map<std::string_view, std::size_t> by_name;  // first index of each name
    std::vector<std::size_t> marked_running;
    RunCounts counts;
    std::vector<int64_t> expected_ms;            // empty: no history
    int64_t remaining_ms = 0;                    // expected time of the tests not finished
    std::vector<std::vector<Attempt>> attempts;  // by test
    std::deque<Span> spans;
    uint64_t version = 0;
    uint64_t order = 0;        // when it was first seen
    uint64_t ended_order = 0;  // when it ended
    std::size_t base = 0;      // the selection's size: repeats add copies of it
  };
  struct Failure {
    uint64_t seq = 0;
    std::string run;
    std::size_t index = 0;
    std::string name;
    std::string result;
    std::string reason;
  };
  struct LoggedSpan {
    uint64_t seq = 0;
    std::string run;
    Span span;
  };
  struct OutputRef {
    std::string run;
    std::size_t index = 0;
    std::size_t position = 0;
  };
  struct KnownWorker {
    WorkerView view;
    uint64_t version = 0;
  };

  void ApplyFleet(FleetView view);
  void ApplyStart(RunStartView start);
  void ApplyDone(TestDoneEvent done);
  void ApplyEnd(RunEndEvent end);
  Run& RunNamed(const std::string& id);
  void Touch(Run& run) { run.version = version_; }
  void KeepOutput(Run& run, std::size_t index, std::size_t position, bool failure);
  void DropOutput(const OutputRef& ref);
  void ForgetEndedRuns();
  // "queued", "running", or the final status's word.
  static std::string StatusOf(const Row& row);
  // A cursor past everything the model holds now.
  StreamCursor Now() const;
  void ForgetRun(std::map<std::string, Run>::iterator run);
  const Run* Find(const std::string& id) const;

  nlohmann::json WorkerJson(const WorkerView& worker, int64_t now_ms) const;
  nlohmann::json RunJson(const Run& run, int64_t now_ms) const;
  nlohmann::json SpanJson(const std::string& run_id, const Span& span) const;
  std::vector<const Run*> RunsInOrder() const;

  DashboardLimits limits_;
  uint64_t version_ = 0;
  uint64_t runs_seen_ = 0;
  int64_t fleet_at_ms_ = 0;
  std::map<std::string, KnownWorker> workers_;                 // by name
  std::deque<std::pair<uint64_t, std::string>> removed_;       // (version, worker name)
  std::deque<std::pair<uint64_t, std::string>> removed_runs_;  // (version, run id)
  uint64_t runs_ended_ = 0;
  std::map<std::string, Run> runs_;                    // by id
  std::map<std::string, std::vector<int64_t>> lanes_;  // worker -> each lane's last end
  std::deque<Failure> failures_;
  std::deque<LoggedSpan> spans_;
  uint64_t next_seq_ = 1;
  std::deque<OutputRef> passing_output_;
  std::deque<OutputRef> failing_output_;
  std::size_t output_bytes_ = 0;
};

// "passed", "failed", ..., "running", "queued": the words a tests query may filter on.
const std::vector<std::string>& TestStatusWords();

}  // namespace testfarm::coordinator
