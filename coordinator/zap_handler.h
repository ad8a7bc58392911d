#pragma once
// The coordinator's ZAP handler (ZeroMQ RFC 27): CurveZMQ proves a worker holds the secret key
// of the public key it presents; this decides whether that public key may join.
#include <map>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "protocol/curve.h"

namespace testfarm::coordinator {

struct ZapRequest {
  std::string version;
  std::string request_id;
  std::string domain;
  std::string address;
  std::string mechanism;
  std::string public_key;  // Z85; empty unless CURVE
};

struct ZapReply {
  std::string status_code;  // "200" or "400"
  std::string status_text;
  std::string user_id;  // the key's label, or the key
};

// Pure: the answer to one request given the allowed keys (public key -> label).
ZapReply DecideZap(const ZapRequest& request, const std::map<std::string, std::string>& allowed);

class ZapHandler {
 public:
  // Binds inproc://zeromq.zap.01 on `context` (one handler per context).
  ZapHandler(zmq::context_t& context, const std::vector<protocol::AllowedKey>& allowed);

  void* handle() { return socket_.handle(); }
  // Answers every waiting request; never blocks. A refused key is logged once.
  void HandleRequests();

 private:
  zmq::socket_t socket_;
  std::map<std::string, std::string> allowed_;
  std::set<std::string> refusals_logged_;
};

}  // namespace testfarm::coordinator
