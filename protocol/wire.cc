#include "protocol/wire.h"

#include <array>
#include <cerrno>
#include <vector>
#include <zmq_addon.hpp>

namespace testfarm::protocol {

void ConfigureSocket(zmq::socket_t& socket) {
  // Whole multipart messages are bounded by the largest frame plus framing overhead.
  socket.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(kMaxFrameBytes + 4096));
  socket.set(zmq::sockopt::linger, 1000);
}

std::optional<Incoming> Receive(zmq::socket_t& socket, bool router) {
  std::vector<zmq::message_t> frames;
  auto got = zmq::recv_multipart(socket, std::back_inserter(frames), zmq::recv_flags::dontwait);
  if (!got) return std::nullopt;
  Incoming in;
  std::size_t first = 0;
  if (router) {
    if (frames.empty()) return std::nullopt;
    in.identity = frames[0].to_string();
    first = 1;
  }
  if (frames.size() - first != 2) {
    in.message =
        DecodeError{DecodeError::Code::kMalformed, "expected 2 frames (header, body), got " +
                                                       std::to_string(frames.size() - first)};
    return in;
  }
  in.message = Decode(frames[first].to_string_view(), frames[first + 1].to_string_view());
  return in;
}

void Poll(zmq_pollitem_t* items, std::size_t count, long timeout_ms) {
  if (zmq_poll(items, static_cast<int>(count), timeout_ms) >= 0) return;
  if (zmq_errno() != EINTR) throw zmq::error_t();
  for (std::size_t i = 0; i < count; ++i) items[i].revents = 0;
}

bool Send(zmq::socket_t& socket, const Message& message, const std::string* identity) {
  std::string body = EncodeBody(message);
  std::vector<zmq::const_buffer> parts;
  if (identity != nullptr) parts.push_back(zmq::buffer(*identity));
  parts.push_back(zmq::buffer(std::string_view(kHeader)));
  parts.push_back(zmq::buffer(body));
  auto sent = zmq::send_multipart(socket, parts, zmq::send_flags::dontwait);
  return sent.has_value();
}

}  // namespace testfarm::protocol
