#pragma once
// `testfarm serve --metrics ADDR`: the farm's Prometheus metrics at http://ADDR/metrics, served by
// Debian's cpp-httplib on threads of its own. The loop feeds it as it feeds the dashboard (a
// DashboardSink): a fleet view at most every `fleet_every`, and each finished test as it is
// reported; each takes a mutex for a few counters. A scrape copies the counts under that mutex
// and writes the text outside it: the loop never does work per scrape, nor waits on one.
#include <memory>
#include <optional>
#include <string>

#include "coordinator/dashboard_feed.h"
#include "coordinator/metrics.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct MetricsOptions {
  std::string address;  // HOST:PORT or PORT (loopback); port 0 picks a free one
  std::string version;  // testfarm's, for testfarm_info
  Millis fleet_every{250};
};

class MetricsServer : public DashboardSink {
 public:
  // Binds and starts serving; the error names the address and why.
  static Result<std::unique_ptr<MetricsServer>> Start(MetricsOptions options);
  ~MetricsServer() override;  // stops serving, joins its threads

  // "http://127.0.0.1:PORT/metrics", with the port resolved.
  const std::string& url() const { return url_; }
  // What a scrape gets now.
  std::string Text() const;

  bool FleetDue(SteadyTime now) override { return pacer_.Due(now); }
  std::optional<SteadyTime> NextFleetAt() const override { return pacer_.NextAt(); }
  void Fleet(FleetView view) override;
  void RunStarted(RunStartView) override {}
  void RunBegan(const std::string&) override {}
  void TestFinished(const std::string& run, const TestReport& report) override;
  void RunEnded(const std::string&, const RunSummary&) override {}

 private:
  class Impl;
  MetricsServer(std::unique_ptr<Impl> impl, Millis fleet_every);

  std::unique_ptr<Impl> impl_;
  std::string url_;
  FleetPacer pacer_;  // the loop's only
};

}  // namespace testfarm::coordinator
