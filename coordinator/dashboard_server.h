#pragma once
// The dashboard's HTTP server (Debian's cpp-httplib) on threads of its own. The event loop pushes
// events into an inbox (a mutex held for a push_back, never while a browser is served); an
// applier thread moves them into the DashboardModel; request threads answer from the model under
// a shared lock. Live streams (Server-Sent Events) send what changed at most every
// `stream_interval`; a stream whose browser stops reading for `stall_timeout` is closed.
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/dashboard_api.h"
#include "coordinator/dashboard_feed.h"
#include "coordinator/dashboard_model.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct DashboardOptions {
  std::string address;  // HOST:PORT or PORT (loopback)
  std::string token;    // empty: none
  bool insecure = false;
  std::string mode;     // "serve" or "run"
  std::string version;  // testfarm's
  std::string history;  // the run history's path; empty: none
  DashboardLimits limits;
  std::size_t max_streams = 64;
  Millis stream_interval{250};
  Millis keep_alive{15000};
  Millis stall_timeout{10000};
  std::size_t max_request_bytes = 64 * 1024;
};

// HOST and PORT of an --http (or `flag`) address; an error names the flag and what is wrong.
struct HttpAddress {
  std::string host;
  int port = 0;
  bool loopback = false;
};
Result<HttpAddress> ParseHttpAddress(const std::string& address,
                                     const std::string& flag = "--http");
// Whether a Host header names this machine's loopback ("127.0.0.1:8080", "localhost", "[::1]").
bool IsLoopbackHost(const std::string& host);

// Whether the address may be served with these options: a non-loopback one needs a token or
// --insecure. The error says so.
Status CheckHttpExposure(const HttpAddress& address, const std::string& token, bool insecure);

class DashboardServer : public DashboardSink {
 public:
  // Binds and starts serving; the error names the address and why.
  static Result<std::unique_ptr<DashboardServer>> Start(DashboardOptions options,
                                                        const Clock& clock);
  ~DashboardServer() override;  // stops serving: open streams end, threads are joined

  // "http://127.0.0.1:PORT/", with the port resolved.
  const std::string& url() const { return url_; }

  bool FleetDue(SteadyTime now) override;
  std::optional<SteadyTime> NextFleetAt() const override;
  void Fleet(FleetView view) override;
  void RunStarted(RunStartView run) override;
  void RunBegan(const std::string& run) override;
  void TestFinished(const std::string& run, const TestReport& report) override;
  void RunEnded(const std::string& run, const RunSummary& summary) override;

  // Waits (bounded) until every event pushed so far is in the model: for tests.
  bool WaitApplied(Millis timeout);
  // Waits (bounded) until `count` streams have been dropped for not reading: for tests.
  bool WaitDropped(std::size_t count, Millis timeout);

 private:
  class Impl;
  explicit DashboardServer(std::unique_ptr<Impl> impl);
  void Push(DashboardEvent event);

  std::unique_ptr<Impl> impl_;
  std::string url_;
  std::size_t output_tail_ = 0;
  FleetPacer fleet_pacer_{Millis(250)};
};

}  // namespace testfarm::coordinator
