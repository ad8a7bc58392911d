#include "coordinator/metrics_server.h"

#include <httplib.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "coordinator/dashboard_server.h"

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
    // A request without a body is answered before httplib looks for one (a POST with neither
    // Content-Length nor a chunked body would otherwise be a 400); one with a body goes the long
    // way, so its bytes are read (up to the payload limit) and never taken for a next request.
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      const bool body =
          req.has_header("Transfer-Encoding") ||
          (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
      if (body && (req.method == "GET" || req.method == "HEAD")) {
        // httplib reads no GET body: refused, its bytes then fail to parse as a next request
        // and the connection closes.
        res.status = 400;
        res.set_content("a GET carries no body\n", "text/plain");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (body) return httplib::Server::HandlerResponse::Unhandled;
      Route(req, res);
      return httplib::Server::HandlerResponse::Handled;
    });
    auto route = [this](const httplib::Request& req, httplib::Response& res) { Route(req, res); };
    server_.Get(".*", route);
    server_.Post(".*", route);
    server_.Put(".*", route);
    server_.Patch(".*", route);
    server_.Delete(".*", route);
    server_.Options(".*", route);
    server_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.body.empty()) res.set_content("the request cannot be served\n", "text/plain");
    });
    int port = address.port;
    if (port == 0) {
      port = server_.bind_to_any_port(address.host);
      if (port < 0) return Error("--metrics: cannot listen on " + address.host + ": in use?");
    } else if (!server_.bind_to_port(address.host, port)) {
      return Error("--metrics: cannot listen on " + address.host + ":" + std::to_string(port) +
                   " (in use, or not an address of this machine)");
    }
    listener_ = std::thread([this] {
      server_.listen_after_bind();
      std::lock_guard lock(mutex_);
      listened_ = true;
      listened_cv_.notify_all();
    });
    const bool v6 = address.host.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(port) +
           "/metrics";
  }

  void Stop() {
    if (!listener_.joinable()) return;
    // httplib's stop() does nothing until the listener has started listening: repeat it until
    // the listener has returned.
    std::unique_lock lock(mutex_);
    while (!listened_) {
      lock.unlock();
      server_.stop();
      lock.lock();
      listened_cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return listened_; });
    }
    lock.unlock();
    listener_.join();
  }

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
  std::condition_variable listened_cv_;
  FarmMetrics metrics_;    // under mutex_
  bool listened_ = false;  // under mutex_: the listener returned
  httplib::Server server_;
  std::thread listener_;
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
