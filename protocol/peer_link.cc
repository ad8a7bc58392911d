#include "protocol/peer_link.h"

#include <spdlog/spdlog.h>

#include <cerrno>

#include "protocol/wire.h"

namespace testfarm::protocol {

namespace {
constexpr Millis kFullQueueRetry{20};
}  // namespace

PeerLink::PeerLink(zmq::context_t& context, const Clock& clock, bool router, std::string self,
                   std::string other_side)
    : clock_(clock),
      router_(router),
      self_(std::move(self)),
      socket_(context, router ? zmq::socket_type::router : zmq::socket_type::dealer),
      monitor_(context, socket_, std::move(other_side)) {
  ConfigureSocket(socket_);
  // Sending to a peer that is gone must fail loudly, not vanish.
  if (router_) socket_.set(zmq::sockopt::router_mandatory, 1);
}

short PeerLink::events() const {
  bool wait_writable = !router_ && !outbox_.empty();
  return static_cast<short>(ZMQ_POLLIN | (wait_writable ? ZMQ_POLLOUT : 0));
}

std::optional<SteadyTime> PeerLink::NextDeadline() const {
  if (!router_ || outbox_.empty()) return std::nullopt;
  return clock_.Now() + kFullQueueRetry;
}

void PeerLink::Receive(const Describe& describe, const OnMessage& on_message) {
  while (auto incoming = protocol::Receive(socket_, router_)) {
    const std::string& peer = incoming->identity;
    if (auto* error = std::get_if<DecodeError>(&incoming->message)) {
      if (error->code == DecodeError::Code::kWrongVersion) {
        // Said once per peer: it retries until one of the two is upgraded.
        if (version_mismatches_told_.insert(peer).second) {
          spdlog::error(
              "{}: {} speaks another protocol version ({}); the two cannot work together until "
              "testfarm on both sides is the same version",
              self_, describe(peer), error->message);
        }
        Send(peer, ErrorReply{"this " + self_.substr(0, self_.find(' ')) +
                              " speaks testfarm protocol version " + std::to_string(kVersion)});
        continue;
      }
      if (auto line = bad_frames_.Note(peer, describe(peer),
                                       std::string(CodeName(error->code)) + ": " + error->message,
                                       clock_.Now())) {
        spdlog::warn("{}: {}", self_, *line);
      }
      Send(peer, ErrorReply{error->message});
      continue;
    }
    on_message(peer, std::get<Message>(incoming->message));
  }
}

void PeerLink::Send(const std::string& peer, Message message) {
  outbox_.push_back(Pending{router_ ? peer : std::string(), std::move(message)});
  Flushed flushed = Flush();
  pending_report_.sent += flushed.sent;
  pending_report_.gone.insert(pending_report_.gone.end(), flushed.gone.begin(), flushed.gone.end());
}

PeerLink::Flushed PeerLink::Flush() {
  Flushed flushed = std::exchange(pending_report_, {});
  std::set<std::string> blocked;  // peers whose queue is full: their later messages wait too
  for (auto it = outbox_.begin(); it != outbox_.end();) {
    if (blocked.count(it->peer) != 0) {
      ++it;
      continue;
    }
    bool sent = false;
    try {
      sent = protocol::Send(socket_, it->message, router_ ? &it->peer : nullptr);
    } catch (const zmq::error_t& e) {
      if (!router_ || e.num() != EHOSTUNREACH) throw;
      std::string gone = it->peer;
      flushed.gone.push_back(gone);
      Forget(gone);
      it = outbox_.begin();  // Forget edited the outbox; the peers before are blocked or done
      continue;
    }
    if (!sent) {
      if (!router_) break;  // one peer, in order
      blocked.insert(it->peer);
      ++it;
      continue;
    }
    ++flushed.sent;
    it = outbox_.erase(it);
  }
  return flushed;
}

void PeerLink::Forget(const std::string& peer) {
  std::erase_if(outbox_, [&](const Pending& p) { return p.peer == peer; });
}

std::vector<PeerLink::Handshake> PeerLink::TakeHandshakeFailures() {
  std::vector<Handshake> out;
  for (HandshakeFailure& failure : monitor_.TakeFailures()) {
    bool new_kind = handshake_kinds_told_.insert(failure.why).second;
    out.push_back(Handshake{std::move(failure), new_kind});
  }
  return out;
}

}  // namespace testfarm::protocol
