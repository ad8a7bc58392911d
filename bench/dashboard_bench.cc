// Benchmark (dashboard at scale): the real DashboardServer fed as a farm of WORKERS x SLOTS
// running a run of TESTS tests, with STREAMS live browsers reading its event stream and STALLED
// ones that never read. Prints:
//  - what the event loop pays per finished test and per fleet view (the sink calls), against a
//    baseline loop that hands the same reports to nobody;
//  - API latency (p50/p99) of a page of tests, failures first, a filtered page, a name search,
//    the workers and one output, asked while the run goes on;
//  - events and bytes per live stream per second (coalesced: at most 4 events a second);
//  - the process's resident memory before the run, after it, and with the streams open;
//  - how many stalled streams were dropped.
//   dashboard_bench [WORKERS=128] [SLOTS=16] [TESTS=100000] [STREAMS=32] [STALLED=8]
//                   [SECONDS=10]
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/dashboard_server.h"
#include "coordinator/history_store.h"

using namespace testfarm::coordinator;
using testfarm::Millis;
using testfarm::SteadyClock;
using Wall = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

long RssKb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

double Ms(Wall::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

std::string Name(std::size_t i) {
  return "suite::Case" + std::to_string(i / 100) + ".Test" + std::to_string(i);
}

TestReport Report(std::size_t i, const std::string& worker, int64_t at) {
  TestReport r;
  r.test = i;
  r.name = Name(i);
  r.suite = "suite";
  r.state = i % 997 == 0 ? TestStatus::kFailed : TestStatus::kPassed;
  r.worker = worker;
  testfarm::protocol::JobResult result;
  result.stdout_text = "[ RUN      ] " + r.name + "\n[       OK ] " + r.name + " (0 ms)\n";
  result.peak_rss_kb = 4000;
  r.result = result;
  r.started_at = Millis(at);
  r.finished_at = Millis(at + 1);
  r.duration = Millis(1);
  return r;
}

FleetView Fleet(int workers, int slots, std::size_t next, int64_t now) {
  FleetView view;
  view.at_ms = now;
  for (int w = 0; w < workers; ++w) {
    WorkerView worker;
    worker.name = "worker-" + std::to_string(w);
    worker.slots = static_cast<unsigned>(slots);
    worker.heard_at_ms = now;
    worker.cache_bytes = 1 << 30;
    for (int s = 0; s < slots; ++s) {
      worker.running.push_back(
          {"run-1", Name(next + static_cast<std::size_t>(w * slots + s)), now});
    }
    view.workers.push_back(std::move(worker));
  }
  RunView run;
  run.id = "run-1";
  run.state = "running";
  run.slots = static_cast<unsigned>(workers * slots);
  view.runs.push_back(run);
  return view;
}

struct Latency {
  std::vector<double> ms;
  double Pct(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    return ms[std::min(ms.size() - 1,
                       static_cast<std::size_t>(p * static_cast<double>(ms.size())))];
  }
};

}  // namespace

int main(int argc, char** argv) {
  auto arg = [&](int i, long fallback) { return argc > i ? std::atol(argv[i]) : fallback; };
  const int workers = static_cast<int>(arg(1, 128));
  const int slots = static_cast<int>(arg(2, 16));
  const std::size_t tests = static_cast<std::size_t>(arg(3, 100000));
  const int streams = static_cast<int>(arg(4, 32));
  const int stalled = static_cast<int>(arg(5, 8));
  const double seconds = static_cast<double>(arg(6, 10));  // how long the run takes

  // Baseline: the loop's own cost of making the reports, handed to nobody.
  std::vector<std::string> worker_names;
  for (int w = 0; w < workers; ++w) worker_names.push_back("worker-" + std::to_string(w));
  auto base_start = Wall::now();
  std::size_t sink = 0;
  for (std::size_t i = 0; i < tests; ++i) {
    TestReport r = Report(i, worker_names[i % worker_names.size()], static_cast<int64_t>(i));
    sink += r.name.size();
  }
  double base_us = Ms(Wall::now() - base_start) * 1000 / static_cast<double>(tests);

  const long rss_start = RssKb();
  SteadyClock clock;
  DashboardOptions options;
  options.address = "127.0.0.1:0";
  options.mode = "serve";
  options.version = "bench";
  options.max_streams = static_cast<std::size_t>(streams + stalled + 4);
  options.stall_timeout = 2000ms;
  auto started = DashboardServer::Start(options, clock);
  if (!started) {
    std::fprintf(stderr, "%s\n", started.error().message.c_str());
    return 1;
  }
  DashboardServer& server = **started;
  std::smatch m;
  std::string url = server.url();
  std::regex_match(url, m, std::regex("http://([0-9.]+):([0-9]+)/"));
  const std::string host = m[1];
  const int port = std::stoi(m[2]);

  RunStartView start;
  start.id = "run-1";
  start.started_ms = UnixMillisNow();
  for (std::size_t i = 0; i < tests; ++i) start.names.push_back(Name(i));
  server.RunStarted(std::move(start));

  // Live browsers.
  std::atomic<bool> stop{false};
  std::atomic<bool> running{false};  // events are counted while the run goes on
  std::vector<std::thread> readers;
  std::vector<std::atomic<long>> events(static_cast<std::size_t>(streams));
  std::vector<std::atomic<long>> bytes(static_cast<std::size_t>(streams));
  for (int s = 0; s < streams; ++s) {
    readers.emplace_back([&, s] {
      httplib::Client client(host, port);
      client.set_read_timeout(30, 0);
      client.Get("/api/v1/events", [&](const char* data, std::size_t size) {
        if (!running) return !stop.load();
        bytes[static_cast<std::size_t>(s)] += static_cast<long>(size);
        std::string_view chunk(data, size);
        for (std::size_t at = 0; (at = chunk.find("event: ", at)) != std::string_view::npos; ++at) {
          ++events[static_cast<std::size_t>(s)];
        }
        return !stop.load();
      });
    });
  }
  // Stalled browsers: ask for the stream, never read.
  std::vector<int> stalled_fds;
  for (int s = 0; s < stalled; ++s) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 1024;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &address.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
      std::string request = "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      if (::write(fd, request.data(), request.size()) < 0) std::perror("write");
    }
    stalled_fds.push_back(fd);
  }

  // API users, asking while the run goes on.
  struct Query {
    const char* label;
    std::string path;
    Latency latency;
  };
  std::vector<Query> queries = {
      {"tests page (failures first)", "/api/v1/runs/run-1/tests?limit=100", {}},
      {"failed tests", "/api/v1/runs/run-1/tests?status=failed,lost&limit=100", {}},
      {"name search", "/api/v1/runs/run-1/tests?q=Test9999&limit=100", {}},
      {"workers", "/api/v1/workers", {}},
      {"runs", "/api/v1/runs", {}},
      {"one output", "/api/v1/runs/run-1/tests/997/output", {}},
  };
  std::thread asker([&] {
    httplib::Client client(host, port);
    while (!stop) {
      for (Query& q : queries) {
        auto t0 = Wall::now();
        auto answer = client.Get(q.path);
        if (answer && answer->status == 200) q.latency.ms.push_back(Ms(Wall::now() - t0));
      }
    }
  });

  // The event loop: the fleet 4 times a second, the tests paced over SECONDS.
  double loop_ms = 0;
  std::size_t fleets = 0;
  double fleet_ms = 0;
  running = true;
  auto run_start = Wall::now();
  auto next_fleet = run_start;
  for (std::size_t i = 0; i < tests; ++i) {
    auto due = run_start + std::chrono::duration_cast<Wall::duration>(std::chrono::duration<double>(
                               seconds * static_cast<double>(i) / static_cast<double>(tests)));
    while (Wall::now() < due) std::this_thread::yield();
    if (Wall::now() >= next_fleet) {
      FleetView view = Fleet(workers, slots, i, UnixMillisNow());
      auto t0 = Wall::now();
      server.Fleet(std::move(view));
      fleet_ms += Ms(Wall::now() - t0);
      ++fleets;
      next_fleet += 250ms;
    }
    TestReport r = Report(i, worker_names[i % worker_names.size()], static_cast<int64_t>(i));
    auto t0 = Wall::now();
    server.TestFinished("run-1", r);
    loop_ms += Ms(Wall::now() - t0);
  }
  double run_s = Ms(Wall::now() - run_start) / 1000;
  running = false;
  RunSummary summary;
  server.RunEnded("run-1", summary);
  server.WaitApplied(60000ms);
  const long rss_run = RssKb();
  bool dropped = server.WaitDropped(static_cast<std::size_t>(stalled), 30000ms);
  stop = true;
  asker.join();
  for (int fd : stalled_fds) ::close(fd);
  // The readers end at their next event or keep-alive.
  server.Fleet(Fleet(workers, slots, 0, UnixMillisNow()));
  for (std::thread& t : readers) t.join();
  const long rss_end = RssKb();

  std::printf(
      "dashboard bench: %d workers x %d slots, %zu tests in %.1f s, %d live streams, "
      "%d stalled\n",
      workers, slots, tests, run_s, streams, stalled);
  std::printf(
      "event loop cost per finished test: %.2f us with the dashboard, %.2f us "
      "baseline (making the report alone): +%.2f us\n",
      loop_ms * 1000 / static_cast<double>(tests) + base_us, base_us,
      loop_ms * 1000 / static_cast<double>(tests));
  std::printf("event loop cost per fleet view (%d slots): %.3f ms (x%zu)\n", workers * slots,
              fleet_ms / static_cast<double>(std::max<std::size_t>(1, fleets)), fleets);
  std::printf("%-30s %8s %8s %6s\n", "API (while running)", "p50 ms", "p99 ms", "n");
  for (Query& q : queries) {
    std::size_t n = q.latency.ms.size();
    std::printf("%-30s %8.2f %8.2f %6zu\n", q.label, q.latency.Pct(0.5), q.latency.Pct(0.99), n);
  }
  long max_events = 0;
  long total_bytes = 0;
  for (int s = 0; s < streams; ++s) {
    max_events = std::max<long>(max_events, events[static_cast<std::size_t>(s)]);
    total_bytes += bytes[static_cast<std::size_t>(s)];
  }
  if (streams > 0) {
    std::printf("live streams: at most %.1f events/s per stream (limit 4), %.0f KiB/s per stream\n",
                static_cast<double>(max_events) / run_s,
                static_cast<double>(total_bytes) / streams / 1024 / run_s);
  }
  std::printf("stalled streams dropped: %s\n", dropped ? "all" : "NOT ALL");
  std::printf(
      "resident memory: %ld MiB before, %ld MiB after the run (+%ld MiB for %zu tests), "
      "%ld MiB at the end\n",
      rss_start / 1024, rss_run / 1024, (rss_run - rss_start) / 1024, tests, rss_end / 1024);
  return sink == 0 || !dropped ? 1 : 0;
}
