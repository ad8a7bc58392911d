#pragma once
// Watches a socket's security handshakes (zmq_socket_monitor) so that a refused key or a
// mismatched security setting is said in words instead of showing up as silence.
#include <string>
#include <zmq.hpp>

namespace testfarm::protocol {

struct HandshakeFailure {
  std::string endpoint;  // the peer's address
  std::string why;       // e.g. "the coordinator refused our key"
};

class HandshakeMonitor {
 public:
  // Starts monitoring `watched` (which must outlive this object) over an inproc PAIR socket.
  // `peer` names the other side in the reasons ("the coordinator refused our key").
  HandshakeMonitor(zmq::context_t& context, zmq::socket_t& watched, std::string peer = "the peer");
  ~HandshakeMonitor();
  HandshakeMonitor(const HandshakeMonitor&) = delete;
  HandshakeMonitor& operator=(const HandshakeMonitor&) = delete;

  // For zmq::poll: readable when events are waiting.
  void* handle() { return events_.handle(); }
  // The handshake failures among the waiting events (never blocks).
  std::vector<HandshakeFailure> TakeFailures();

 private:
  zmq::socket_t& watched_;
  zmq::socket_t events_;
  std::string peer_;
};

}  // namespace testfarm::protocol
