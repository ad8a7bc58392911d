#pragma once
// Moving messages over ZeroMQ sockets: [identity,] header, body. Shared by both sides so framing
// lives in one place. Receiving never throws for bad input: a malformed multipart message comes
// back as a DecodeError; only real socket errors (zmq::error_t) escape, to the loop boundary.
#include <optional>
#include <string>
#include <variant>
#include <zmq.hpp>

#include "protocol/codec.h"

namespace testfarm::protocol {

// Applies the limits every testfarm socket has: maximum message size, short linger.
void ConfigureSocket(zmq::socket_t& socket);

struct Incoming {
  std::string identity;  // ROUTER only: the sender
  std::variant<Message, DecodeError> message;
};

// Non-blocking. nullopt when nothing is waiting. `router`: the first frame is the identity.
std::optional<Incoming> Receive(zmq::socket_t& socket, bool router);

// zmq_poll over sockets and raw fds. A signal interrupting the wait (EINTR) is "nothing ready",
// not an error; other failures throw zmq::error_t, to be caught at the loop boundary.
void Poll(zmq_pollitem_t* items, std::size_t count, long timeout_ms);

// Sends `message` (prefixed by `identity` for a ROUTER). Returns false if it would block.
bool Send(zmq::socket_t& socket, const Message& message, const std::string* identity = nullptr);

}  // namespace testfarm::protocol
