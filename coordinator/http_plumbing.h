#pragma once
// What the dashboard's and the metrics' HTTP servers (Debian's cpp-httplib) do alike: answer a
// request without a body before httplib looks for one, send every method to one router, bind
// the address (port 0: a free one) and give its URL.
#include <httplib.h>

#include <functional>
#include <string>

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

// "http://HOST:PORT" ("[HOST]" for IPv6) followed by `path`.
std::string HttpUrl(const HttpAddress& address, int port, const std::string& path);

}  // namespace testfarm::coordinator
