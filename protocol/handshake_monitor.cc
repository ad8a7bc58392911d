#include "protocol/handshake_monitor.h"

#include <zmq.h>

#include <atomic>
#include <cstring>
#include <utility>
#include <vector>

namespace testfarm::protocol {

namespace {

std::string DescribeFailure(const std::string& peer, uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
    return value == 400
               ? peer + " refused our key"
               : "authentication by " + peer + " failed (status " + std::to_string(value) + ")";
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
      return "security mismatch: one side uses CurveZMQ keys and the other does not";
    }
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
      return "the keys do not match (a worker given the wrong --coordinator-key?)";
    }
    return "protocol error in the security handshake (code " + std::to_string(value) + ")";
  }
  // The peer hung up mid-handshake: it could not decrypt us, or expected no keys or other ones.
  return "the security handshake failed: the keys do not match, or only one side uses keys (" +
         std::string(zmq_strerror(static_cast<int>(value))) + ")";
}

}  // namespace

HandshakeMonitor::HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched,
                                   std::string peer)
    : watched_(watched), events_(context, zmq::socket_type::pair), peer_(std::move(peer)) {
  static std::atomic<unsigned> counter{0};
  std::string endpoint = "inproc://testfarm-monitor-" + std::to_string(++counter);
  int events = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
  if (zmq_socket_monitor(watched_.handle(), endpoint.c_str(), events) != 0) throw zmq::error_t();
  events_.connect(endpoint);
}

HandshakeMonitor::~HandshakeMonitor() {
  // Stops the monitor; harmless if the context is already shut down.
  zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

std::vector<HandshakeFailure> HandshakeMonitor::TakeFailures() {
  std::vector<HandshakeFailure> failures;
  while (true) {
    zmq::message_t header;
    if (!events_.recv(header, zmq::recv_flags::dontwait)) break;
    zmq::message_t address;
    if (header.more()) (void)events_.recv(address, zmq::recv_flags::none);
    if (header.size() < 6) continue;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, header.data(), sizeof event);
    std::memcpy(&value, static_cast<const char*>(header.data()) + 2, sizeof value);
    failures.push_back({address.to_string(), DescribeFailure(peer_, event, value)});
  }
  return failures;
}

}  // namespace testfarm::protocol
