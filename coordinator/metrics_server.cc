#include "coordinator/metrics_server.h"

#include <httplib.h>

#include <mutex>

#include "coordinator/dashboard_server.h"
#include "coordinator/http_plumbing.h"

namespace testfarm::coordinator {

class MetricsServer::Impl {
 public:
  explicit Impl(std::string version) { metrics_.version = std::move(version); }
  ~Impl() { Stop(); }

  Result<std::string> Start(const HttpAddress& address) {
    // Scrapes are few (a Prometheus or two, every few seconds): a handful of threads.
    server_.new_task_queue = [] { return new httplib::ThreadPool(4); };
    server_.set_payload_max_length(64 * 1024);
    server_.set_read_timeout(10, 0);
    server_.set_write_timeout(10, 0);
    RouteEveryRequest(
        server_, [this](const httplib::Request& req, httplib::Response& res) { Route(req, res); },
        [](const httplib::Request&, httplib::Response& res) {
          res.status = 400;
          res.set_content("a GET carries no body\n", "text/plain");
        });
    server_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) res.set_content("the request cannot be served\n", "text/plain");
    });
    Result<int> port = BindHttp(server_, address, "--metrics");
    if (!port) return port.error();
    listener_.Start(server_);
    return HttpUrl(address, *port, "/metrics");
  }

  void Stop() { listener_.Stop(); }

  template <typename Change>
  void Update(Change change) {
    std::lock_guard lock(mutex_);
    change(metrics_);
  }

  std::string Text() const {
    FarmMetrics copy;
    {
      std::lock_guard lock(mutex_);
      copy = metrics_;
    }
    return MetricsText(copy);
  }

 private:
  void Route(const httplib::Request& req, httplib::Response& res) const {
    res.set_header("Cache-Control", "no-store");
    if (req.method != "GET" && req.method != "HEAD") {
      res.status = 405;
      res.set_header("Allow", "GET, HEAD");
      res.set_content(req.method + " is not served: the metrics are read-only\n", "text/plain");
      return;
    }
    if (req.path != "/metrics") {
      res.status = 404;
      res.set_content("no such page: " + req.path + " (the metrics are at /metrics)\n",
                      "text/plain");
      return;
    }
    res.status = 200;
    res.set_content(Text(), kMetricsContentType);
  }

  mutable std::mutex mutex_;
  FarmMetrics metrics_;  // under mutex_
  httplib::Server server_;
  HttpListener listener_;  // after server_: stopped before it goes
};

MetricsServer::MetricsServer(std::unique_ptr<Impl> impl, Millis fleet_every)
    : impl_(std::move(impl)), pacer_(fleet_every) {}

MetricsServer::~MetricsServer() = default;

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(MetricsOptions options) {
  auto address = ParseHttpAddress(options.address, "--metrics");
  if (!address) return address.error();
  auto impl = std::make_unique<Impl>(std::move(options.version));
  auto url = impl->Start(*address);
  if (!url) return url.error();
  std::unique_ptr<MetricsServer> server(new MetricsServer(std::move(impl), options.fleet_every));
  server->url_ = *url;
  return server;
}

std::string MetricsServer::Text() const {
  return impl_->Text();
}

void MetricsServer::Fleet(FleetView view) {
  impl_->Update([&view](FarmMetrics& metrics) { TakeFleet(metrics, view); });
}

void MetricsServer::TestFinished(const std::string&, const TestReport& report) {
  impl_->Update([&report](FarmMetrics& metrics) { CountFinished(metrics, report); });
}

}  // namespace testfarm::coordinator
