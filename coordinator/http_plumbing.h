#pragma once
// What the dashboard's and the metrics' HTTP servers (Debian's cpp-httplib) do alike: answer a
// request without a body before httplib looks for one, send every method to one router, bind
// the address (port 0: a free one) and give its URL.
#include <httplib.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "coordinator/dashboard_server.h"
#include "shared/result.h"

namespace testfarm::coordinator {

using HttpHandler = std::function<void(const httplib::Request&, httplib::Response&)>;

// Routes every request to `route`. One that declares a body goes the long way, so httplib reads
// it (or refuses one over the payload limit with 413 and closes the connection) and its bytes
// are never taken for a next request; a GET or HEAD with a body goes to `refuse_body` (httplib
// reads no GET body: its bytes then fail to parse as a next request and the connection closes).
// Every other request is answered before any handler.
void RouteEveryRequest(httplib::Server& server, HttpHandler route, HttpHandler refuse_body);

// Binds `address` (port 0: a free one); the error names `flag` and why. Returns the port.
Result<int> BindHttp(httplib::Server& server, const HttpAddress& address, const std::string& flag);

// The thread that serves a bound server (listen_after_bind) until Stop().
class HttpListener {
 public:
  HttpListener() = default;
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;
  ~HttpListener() { Stop(); }

  // Serves `server`, which must be bound and outlive the listener (or its Stop()).
  void Start(httplib::Server& server);
  // Stops the server and waits for the thread; does nothing if not started or already stopped.
  void Stop();

 private:
  httplib::Server* server_ = nullptr;
  std::mutex mutex_;
  std::condition_variable returned_cv_;
  bool returned_ = false;  // under mutex_: listen_after_bind returned
  std::thread thread_;
};

// "http://HOST:PORT" ("[HOST]" for IPv6) followed by `path`.
std::string HttpUrl(const HttpAddress& address, int port, const std::string& path);

}  // namespace testfarm::coordinator
