#include "coordinator/http_plumbing.h"

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

std::string HttpUrl(const HttpAddress& address, int port, const std::string& path) {
  const bool v6 = address.host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(port) +
         path;
}

}  // namespace testfarm::coordinator
