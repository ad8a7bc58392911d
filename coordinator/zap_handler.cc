#include "coordinator/zap_handler.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace testfarm::coordinator {

ZapReply DecideZap(const ZapRequest& request, const std::map<std::string, std::string>& allowed) {
  if (request.version != "1.0") return {"500", "unsupported ZAP version", ""};
  if (request.mechanism != "CURVE") return {"400", "a CurveZMQ key is required", ""};
  auto it = allowed.find(request.public_key);
  if (it == allowed.end()) return {"400", "key not allowed", ""};
  return {"200", "OK", it->second.empty() ? request.public_key : it->second};
}

ZapHandler::ZapHandler(zmq::context_t& context, const std::vector<protocol::AllowedKey>& allowed)
    : socket_(context, zmq::socket_type::rep) {
  for (const protocol::AllowedKey& key : allowed) allowed_[key.public_key] = key.label;
  socket_.set(zmq::sockopt::linger, 0);
  socket_.bind("inproc://zeromq.zap.01");
}

void ZapHandler::HandleRequests() {
  while (true) {
    std::vector<zmq::message_t> frames;
    zmq::message_t frame;
    if (!socket_.recv(frame, zmq::recv_flags::dontwait)) return;
    bool more = frame.more();
    frames.push_back(std::move(frame));
    while (more) {
      zmq::message_t next;
      (void)socket_.recv(next, zmq::recv_flags::none);
      more = next.more();
      if (frames.size() < 8) frames.push_back(std::move(next));
    }
    // version, request id, domain, address, identity, mechanism, credentials...
    ZapRequest request;
    auto text = [&](std::size_t i) { return i < frames.size() ? frames[i].to_string() : ""; };
    request.version = text(0);
    request.request_id = text(1);
    request.domain = text(2);
    request.address = text(3);
    request.mechanism = text(5);
    if (request.mechanism == "CURVE") request.public_key = protocol::Z85Of(text(6));
    ZapReply reply = DecideZap(request, allowed_);
    // Each refused key is said once; past a thousand (a peer making up keys) they go unlogged.
    if (reply.status_code != "200" && refusals_logged_.size() < 1000 &&
        refusals_logged_.insert(request.public_key).second) {
      spdlog::warn("coordinator: refused a worker at {}: {}{}", request.address, reply.status_text,
                   request.public_key.empty() ? "" : " (" + request.public_key + ")");
    }
    const std::string parts[] = {
        "1.0", request.request_id, reply.status_code, reply.status_text, reply.user_id, ""};
    for (std::size_t i = 0; i < std::size(parts); ++i) {
      socket_.send(zmq::buffer(parts[i]),
                   i + 1 < std::size(parts) ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
}

}  // namespace testfarm::coordinator
