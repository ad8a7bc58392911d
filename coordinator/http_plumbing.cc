#include "coordinator/http_plumbing.h"

#include <chrono>

namespace testfarm::coordinator {

void RouteEveryRequest(httplib::Server& server, HttpHandler route, HttpHandler refuse_body) {
  server.set_pre_routing_handler(
      [route, refuse_body](const httplib::Request& req, httplib::Response& res) {
        const bool body =
            req.has_header("Transfer-Encoding") ||
            (req.has_header("Content-Length") && req.get_header_value("Content-Length") != "0");
        if (body && (req.method == "GET" || req.method == "HEAD")) {
          refuse_body(req, res);
          return httplib::Server::HandlerResponse::Handled;
        }
        if (body) return httplib::Server::HandlerResponse::Unhandled;
        route(req, res);
        return httplib::Server::HandlerResponse::Handled;
      });
  server.Get(".*", route);
  server.Post(".*", route);
  server.Put(".*", route);
  server.Patch(".*", route);
  server.Delete(".*", route);
  server.Options(".*", route);
}

Result<int> BindHttp(httplib::Server& server, const HttpAddress& address, const std::string& flag) {
  int port = address.port;
  if (port == 0) {
    port = server.bind_to_any_port(address.host);
    if (port < 0) return Error(flag + ": cannot listen on " + address.host + ": in use?");
  } else if (!server.bind_to_port(address.host, port)) {
    return Error(flag + ": cannot listen on " + address.host + ":" + std::to_string(port) +
                 " (in use, or not an address of this machine)");
  }
  return port;
}

void HttpListener::Start(httplib::Server& server) {
  server_ = &server;
  thread_ = std::thread([this] {
    server_->listen_after_bind();
    std::lock_guard lock(mutex_);
    returned_ = true;
    returned_cv_.notify_all();
  });
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  // httplib's stop() does nothing until the listener has started listening: repeat it until
  // the listener has returned.
  std::unique_lock lock(mutex_);
  while (!returned_) {
    lock.unlock();
    server_->stop();
    lock.lock();
    returned_cv_.wait_for(lock, std::chrono::milliseconds(10), [&] { return returned_; });
  }
  lock.unlock();
  thread_.join();
}

std::string HttpUrl(const HttpAddress& address, int port, const std::string& path) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(port) +
         path;
}

}  // namespace testfarm::coordinator
