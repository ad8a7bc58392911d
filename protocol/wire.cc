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
  // Frame by frame: a hostile peer's extra frames are counted and dropped, never accumulated.
  // (Each frame is bounded by ZMQ_MAXMSGSIZE on TCP; inproc peers live in this process.)
  const std::size_t wanted = router ? 3 : 2;
  std::vector<zmq::message_t> frames;
  std::size_t count = 0;
  while (true) {
    zmq::message_t frame;
    auto flags = count == 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none;
    if (!socket.recv(frame, flags)) return std::nullopt;  // nothing waiting
    ++count;
    bool more = frame.more();
    if (frames.size() < wanted) frames.push_back(std::move(frame));
    if (!more) break;
  }
  Incoming in;
  if (router) in.identity = frames[0].to_string();
  std::size_t first = router ? 1 : 0;
  if (count != wanted) {
    in.message =
        DecodeError{DecodeError::Code::kMalformed,
                    "expected 2 frames (header, body), got " + std::to_string(count - first)};
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
