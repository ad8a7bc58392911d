#include "coordinator/metrics.h"

#include <algorithm>
#include <charconv>

namespace testfarm::coordinator {

namespace {

// A sample's value: integers as such, others in the shortest form that reads back the same.
std::string Number(double value) {
  char text[64];
  auto [end, ec] = std::to_chars(text, text + sizeof text, value);
  return ec == std::errc() ? std::string(text, end) : std::string("NaN");
}

void Family(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view labels,
            const std::string& value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

void Sample(std::string& out, std::string_view name, std::string_view labels, uint64_t value) {
  Sample(out, name, labels, std::to_string(value));
}

void Gauge(std::string& out, const char* name, const char* help, uint64_t value) {
  Family(out, name, "gauge", help);
  Sample(out, name, "", value);
}

}  // namespace

void TakeFleet(FarmMetrics& metrics, const FleetView& view) {
  metrics.workers = view.workers.size();
  metrics.draining = 0;
  metrics.slots = 0;
  metrics.slots_busy = 0;
  for (const WorkerView& worker : view.workers) {
    metrics.draining += worker.draining ? 1 : 0;
    metrics.slots += worker.draining ? 0 : worker.slots;
    metrics.slots_busy += std::min<uint64_t>(worker.running.size(), worker.slots);
  }
  metrics.runs_running = 0;
  metrics.runs_queued = 0;
  metrics.tests_queued = 0;
  for (const RunView& run : view.runs) {
    ++(run.state == "waiting" ? metrics.runs_queued : metrics.runs_running);
    metrics.tests_queued += run.queued;
  }
  if (view.dispatch_latency.count() >= metrics.dispatch_latency.count()) {
    metrics.dispatch_latency = view.dispatch_latency;
  }
  metrics.bytes_shipped = std::max(metrics.bytes_shipped, view.bytes_shipped);
}

void CountFinished(FarmMetrics& metrics, const TestReport& report) {
  if (report.retried) return;
  for (std::size_t i = 0; i < kEveryStatus.size(); ++i) {
    if (kEveryStatus[i] == report.state) ++metrics.finished[i];
  }
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string MetricsText(const FarmMetrics& metrics) {
  std::string out;
  Family(out, "testfarm_info", "gauge", "The farm's testfarm version (always 1).");
  Sample(out, "testfarm_info", "version=\"" + EscapeLabelValue(metrics.version) + "\"", 1);
  Gauge(out, "testfarm_workers", "Workers connected to the farm.", metrics.workers);
  Gauge(out, "testfarm_workers_draining",
        "Workers draining (told to stop): they finish their running tests and take no new ones.",
        metrics.draining);
  Gauge(out, "testfarm_slots", "Slots of the connected workers that take tests (not draining).",
        metrics.slots);
  Gauge(out, "testfarm_slots_busy", "Slots running a test now.", metrics.slots_busy);
  Family(out, "testfarm_runs", "gauge",
         "Runs holding slots (running: running, stopping or finishing) and waiting their turn "
         "(queued).");
  Sample(out, "testfarm_runs", "state=\"running\"", metrics.runs_running);
  Sample(out, "testfarm_runs", "state=\"queued\"", metrics.runs_queued);
  Gauge(out, "testfarm_tests_queued",
        "Tests of the farm's runs not yet started, waiting for a slot (every test of a queued "
        "run).",
        metrics.tests_queued);
  Family(out, "testfarm_tests_finished_total", "counter",
         "Tests finished, by status (a failure, crash or timeout is failed; an expired one lost; "
         "a retried attempt is not counted).");
  for (std::size_t i = 0; i < kEveryStatus.size(); ++i) {
    Sample(out, "testfarm_tests_finished_total",
           std::string("status=\"") + StatusKey(kEveryStatus[i]) + "\"", metrics.finished[i]);
  }
  const char* latency = "testfarm_dispatch_latency_seconds";
  Family(out, latency, "histogram",
         "From a job's assignment to a worker to the worker's word that it started (transport, "
         "fetching its files and, for a job held ahead of a free slot, that wait included).");
  const LatencyHistogram& histogram = metrics.dispatch_latency;
  const auto& bounds = LatencyHistogram::Bounds();
  const std::string bucket = std::string(latency) + "_bucket";
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    Sample(out, bucket, std::string("le=\"") + bounds[i].le + "\"", histogram.CumulativeCount(i));
  }
  Sample(out, bucket, "le=\"+Inf\"", histogram.count());
  Sample(out, std::string(latency) + "_sum", "",
         Number(std::chrono::duration<double>(histogram.sum()).count()));
  Sample(out, std::string(latency) + "_count", "", histogram.count());
  Family(out, "testfarm_bytes_shipped_total", "counter",
         "Bytes of test files the farm sent to workers.");
  Sample(out, "testfarm_bytes_shipped_total", "", metrics.bytes_shipped);
  return out;
}

}  // namespace testfarm::coordinator
