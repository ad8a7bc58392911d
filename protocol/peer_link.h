#pragma once
// One end of the testfarm conversation on a ZeroMQ socket — the coordinator's ROUTER (many
// peers, by identity) or a worker's DEALER (one peer) — doing what both sides do alike:
//
//  - Receiving: each message that decodes is handed on. One that does not is answered with an
//    `error` and never handed on: a peer of another protocol version is told ours and said in
//    the log once; other bad frames are said at a bounded rate per peer (BadFrameLog), so 2000
//    garbage frames make a handful of lines.
//  - Sending, through an outbox: a message the socket cannot take now (no connection yet, a full
//    queue) waits for the next Flush instead of being lost. A peer that is gone (a ROUTER's
//    EHOSTUNREACH) is reported to the caller, not thrown.
//  - Handshakes: the socket monitor's failures (a refused key, a security mismatch), each kind
//    reported as new once.
//
// Socket errors other than these escape as zmq::error_t, to the loop's boundary.
#include <deque>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "protocol/bad_frames.h"
#include "protocol/handshake_monitor.h"
#include "protocol/messages.h"
#include "shared/clock.h"

namespace testfarm::protocol {

class PeerLink {
 public:
  // `router`: a ROUTER socket, else a DEALER. `self` starts our log lines ("coordinator",
  // "worker w1"); `other_side` names the peer in handshake reasons ("the coordinator").
  PeerLink(zmq::context_t& context, const Clock& clock, bool router, std::string self,
           std::string other_side);

  // For setting options before connecting or binding.
  zmq::socket_t& socket() { return socket_; }
  void* handle() { return socket_.handle(); }
  void* monitor_handle() { return monitor_.handle(); }
  // What to poll the socket for: readable, and writable while a DEALER's outbox holds messages.
  short events() const;
  // While a ROUTER's outbox holds messages (a peer's queue was full), retry soon.
  std::optional<SteadyTime> NextDeadline() const;

  using Describe = std::function<std::string(const std::string& peer)>;
  using OnMessage = std::function<void(const std::string& peer, Message& message)>;
  // Receives everything waiting (never blocks). `describe(peer)` names a peer in log lines
  // ("worker w1", "a peer that has not joined").
  void Receive(const Describe& describe, const OnMessage& on_message);

  // Queues `message` for `peer` (ignored on a DEALER) and sends what the socket takes.
  void Send(const std::string& peer, Message message);
  struct Flushed {
    std::size_t sent = 0;
    std::vector<std::string> gone;  // ROUTER: peers that are no longer connected
  };
  // Sends what waits, in order per peer; what the socket does not take stays queued.
  Flushed Flush();
  std::size_t queued() const { return outbox_.size(); }
  // Drops what waits for `peer` (it is gone, or the conversation is over).
  void Forget(const std::string& peer);

  struct Handshake {
    HandshakeFailure failure;
    bool new_kind = false;  // the first of its kind ("why") on this link
  };
  std::vector<Handshake> TakeHandshakeFailures();

  // Lines for bad frames dropped but not yet told; call when a run or connection ends.
  std::vector<std::string> TakeUntoldBadFrames() { return bad_frames_.Flush(); }

 private:
  struct Pending {
    std::string peer;
    Message message;
  };

  const Clock& clock_;
  bool router_;
  std::string self_;
  zmq::socket_t socket_;
  HandshakeMonitor monitor_;
  BadFrameLog bad_frames_;
  std::set<std::string> version_mismatches_told_;  // by peer
  std::set<std::string> handshake_kinds_told_;
  std::deque<Pending> outbox_;
  Flushed pending_report_;  // what Send's own flushes found, for the next Flush to return
};

}  // namespace testfarm::protocol
