#pragma once
// The farm's Prometheus metrics (text exposition format 0.0.4): a snapshot of plain counts taken
// from what the loop hands a DashboardSink (a FleetView a few times a second, each finished
// test), and its text. Pure: no thread, no socket.
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "coordinator/dashboard_feed.h"
#include "coordinator/latency_histogram.h"
#include "coordinator/report.h"
#include "coordinator/test_status.h"

namespace testfarm::coordinator {

// Every test status, in the order the metrics list them (labelled by StatusKey).
inline constexpr std::array<TestStatus, 7> kEveryStatus = {
    TestStatus::kPassed,    TestStatus::kFailed,  TestStatus::kFlaky, TestStatus::kSkipped,
    TestStatus::kCancelled, TestStatus::kExpired, TestStatus::kNotRun};

struct FarmMetrics {
  std::string version;  // testfarm's
  // Gauges, as of the last fleet view.
  uint64_t workers = 0;       // connected
  uint64_t draining = 0;      // of those, draining (leaving: they take no new tests)
  uint64_t slots = 0;         // of the connected workers that take tests (not draining)
  uint64_t slots_busy = 0;    // running a test now
  uint64_t runs_running = 0;  // holding slots (running, stopping or finishing)
  uint64_t runs_queued = 0;   // waiting their turn (serve --max-runs)
  uint64_t tests_queued = 0;  // of every run, those waiting for a slot
  // Counters: they never go down.
  std::array<uint64_t, kEveryStatus.size()> finished{};  // by kEveryStatus's order
  LatencyHistogram dispatch_latency;
  uint64_t bytes_shipped = 0;
};

// The gauges and the farm's totals from a fleet view. Totals never go down: a view carrying a
// smaller one (there is none from a farm) leaves it as it was.
void TakeFleet(FarmMetrics& metrics, const FleetView& view);
// A test's report counted by its status; an attempt that will be retried is not a test finished.
void CountFinished(FarmMetrics& metrics, const TestReport& report);

// The text a scrape of /metrics gets.
std::string MetricsText(const FarmMetrics& metrics);
// A label's value as the exposition writes it between quotes: \ " and newline escaped.
std::string EscapeLabelValue(std::string_view value);

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace testfarm::coordinator
