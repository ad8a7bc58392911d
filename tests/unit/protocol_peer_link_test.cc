// The peer link over inproc sockets: what it hands on, what it answers, what it keeps.
#include <gtest/gtest.h>

#include <string>
#include <vector>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "protocol/codec.h"
#include "protocol/peer_link.h"
#include "protocol/wire.h"

namespace testfarm::protocol {
namespace {

constexpr long kBoundMs = 5000;  // bound on waiting for inproc delivery

// Sends `frames` as one multipart message, whatever they hold.
void SendRaw(zmq::socket_t& socket, const std::vector<std::string>& frames) {
  std::vector<zmq::const_buffer> parts;
  for (const std::string& frame : frames) parts.push_back(zmq::buffer(frame));
  ASSERT_TRUE(zmq::send_multipart(socket, parts).has_value());
}

// Waits (bounded) until `socket` is readable.
bool Readable(zmq::socket_t& socket) {
  zmq_pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  return zmq_poll(&item, 1, kBoundMs) == 1;
}

// The messages (decoded) a raw DEALER receives, until none arrive for a moment.
std::vector<Message> ReceiveAll(zmq::socket_t& dealer, std::size_t expected) {
  std::vector<Message> out;
  while (out.size() < expected && Readable(dealer)) {
    while (auto incoming = Receive(dealer, /*router=*/false)) {
      if (auto* message = std::get_if<Message>(&incoming->message)) out.push_back(*message);
    }
  }
  return out;
}

struct RouterAndRawPeer {
  zmq::context_t context;
  SteadyClock clock;
  PeerLink link{context, clock, /*router=*/true, "coordinator", "the worker"};
  zmq::socket_t raw{context, zmq::socket_type::dealer};
  explicit RouterAndRawPeer(const std::string& name) {
    link.socket().bind("inproc://" + name);
    raw.set(zmq::sockopt::routing_id, "raw");
    raw.connect("inproc://" + name);
  }
  // Receives on the link until `count` good messages came or nothing more arrives.
  std::vector<std::string> Pump(std::size_t count) {
    std::vector<std::string> types;
    zmq_pollitem_t item{link.handle(), 0, ZMQ_POLLIN, 0};
    while (types.size() < count && zmq_poll(&item, 1, kBoundMs) == 1) {
      link.Receive([](const std::string& peer) { return "peer " + peer; },
                   [&](const std::string& peer, Message& message) {
                     EXPECT_EQ(peer, "raw");
                     types.push_back(TypeName(message));
                   });
      link.Flush();
    }
    return types;
  }
};

TEST(PeerLink, HandsOnGoodMessagesAndAnswersBadFramesWithoutHandingThemOn) {
  RouterAndRawPeer p("peer-link-bad");
  for (int i = 0; i < 200; ++i) SendRaw(p.raw, {"junk"});
  ASSERT_TRUE(Send(p.raw, Heartbeat{}));
  EXPECT_EQ(p.Pump(1), std::vector<std::string>{"heartbeat"}) << "200 bad frames never handed on";
  std::vector<Message> replies = ReceiveAll(p.raw, 200);
  ASSERT_EQ(replies.size(), 200u) << "each one answered";
  EXPECT_TRUE(std::holds_alternative<ErrorReply>(replies[0]));
  std::vector<std::string> untold = p.link.TakeUntoldBadFrames();
  ASSERT_EQ(untold.size(), 1u) << "said at a bounded rate: the rest in one line";
  EXPECT_NE(untold[0].find("199"), std::string::npos) << untold[0];
  EXPECT_NE(untold[0].find("peer raw"), std::string::npos) << untold[0];
}

TEST(PeerLink, APeerOfAnotherVersionIsToldOurs) {
  RouterAndRawPeer p("peer-link-version");
  std::string other = std::string(kName) + "/" + std::to_string(kVersion + 1);
  SendRaw(p.raw, {other, EncodeBody(Heartbeat{})});
  ASSERT_TRUE(Send(p.raw, Bye{"then"}));
  EXPECT_EQ(p.Pump(1), std::vector<std::string>{"bye"});
  std::vector<Message> replies = ReceiveAll(p.raw, 1);
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<ErrorReply>(replies[0]));
  EXPECT_EQ(std::get<ErrorReply>(replies[0]).text,
            "this coordinator speaks testfarm protocol version " + std::to_string(kVersion));
}

TEST(PeerLink, ARouterReportsAPeerThatIsGoneInsteadOfThrowing) {
  RouterAndRawPeer p("peer-link-gone");
  ASSERT_TRUE(Send(p.raw, Heartbeat{}));
  ASSERT_EQ(p.Pump(1).size(), 1u);  // the raw peer is known now
  p.link.Send("nobody", Heartbeat{});
  p.link.Send("raw", Bye{"done"});
  PeerLink::Flushed flushed = p.link.Flush();
  EXPECT_EQ(flushed.gone, std::vector<std::string>{"nobody"});
  EXPECT_EQ(flushed.sent, 1u);
  EXPECT_EQ(p.link.queued(), 0u);
  std::vector<Message> got = ReceiveAll(p.raw, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Bye>(got[0]));
}

TEST(PeerLink, ARouterKeepsWhatAFullPeerCannotTakeInOrderAndStillServesOthers) {
  zmq::context_t context;
  SteadyClock clock;
  PeerLink link(context, clock, /*router=*/true, "coordinator", "the worker");
  link.socket().set(zmq::sockopt::sndhwm, 2);
  link.socket().bind("inproc://peer-link-full");
  zmq::socket_t slow(context, zmq::socket_type::dealer);
  slow.set(zmq::sockopt::rcvhwm, 2);
  slow.set(zmq::sockopt::routing_id, "slow");
  slow.connect("inproc://peer-link-full");
  ASSERT_TRUE(Send(slow, Heartbeat{}));
  zmq_pollitem_t item{link.handle(), 0, ZMQ_POLLIN, 0};
  ASSERT_EQ(zmq_poll(&item, 1, kBoundMs), 1);
  link.Receive([](const std::string& peer) { return peer; }, [](const std::string&, Message&) {});
  // 50 messages for a peer that reads nothing: its queue fills, the rest wait, none is lost.
  for (uint64_t i = 0; i < 50; ++i) link.Send("slow", Cancel{i});
  link.Send("nobody", Heartbeat{});
  PeerLink::Flushed flushed = link.Flush();
  EXPECT_EQ(flushed.gone, std::vector<std::string>{"nobody"});
  std::size_t waiting = link.queued();
  EXPECT_GT(waiting, 0u) << "the queue is full";
  EXPECT_LT(waiting, 50u) << "some went";
  EXPECT_NE(link.NextDeadline(), std::nullopt) << "the loop comes back to retry";
  // The peer reads; each flush moves more; everything arrives in order.
  std::vector<uint64_t> leases;
  for (int round = 0; round < 200 && leases.size() < 50; ++round) {
    if (!Readable(slow)) break;
    while (auto incoming = Receive(slow, /*router=*/false)) {
      leases.push_back(std::get<Cancel>(std::get<Message>(incoming->message)).lease);
    }
    // As the event loop's poll does: the socket learns that the peer's queue has room.
    (void)link.socket().get(zmq::sockopt::events);
    link.Flush();
  }
  ASSERT_EQ(leases.size(), 50u);
  for (uint64_t i = 0; i < 50; ++i) EXPECT_EQ(leases[i], i);
  EXPECT_EQ(link.queued(), 0u);
  EXPECT_EQ(link.NextDeadline(), std::nullopt);
}

TEST(PeerLink, ADealerKeepsWhatItCannotSendYetInOrder) {
  zmq::context_t context;
  SteadyClock clock;
  PeerLink link(context, clock, /*router=*/false, "worker w", "the coordinator");
  // Not connected: nothing can go, nothing is lost, and the loop is asked to wait for writable.
  link.Send({}, Hello{"w", 1, "linux", "x86_64", {}});
  link.Send({}, Heartbeat{});
  EXPECT_EQ(link.queued(), 2u);
  EXPECT_NE(link.events() & ZMQ_POLLOUT, 0);
  zmq::socket_t router(context, zmq::socket_type::router);
  router.bind("inproc://peer-link-later");
  link.socket().connect("inproc://peer-link-later");
  zmq_pollitem_t item{link.handle(), 0, ZMQ_POLLOUT, 0};
  ASSERT_EQ(zmq_poll(&item, 1, kBoundMs), 1);
  EXPECT_EQ(link.Flush().sent, 2u);
  EXPECT_EQ(link.queued(), 0u);
  EXPECT_EQ(link.events() & ZMQ_POLLOUT, 0);
  std::vector<std::string> types;
  while (types.size() < 2 && Readable(router)) {
    while (auto incoming = Receive(router, /*router=*/true)) {
      types.push_back(TypeName(std::get<Message>(incoming->message)));
    }
  }
  EXPECT_EQ(types, (std::vector<std::string>{"hello", "heartbeat"}));
}

}  // namespace
}  // namespace testfarm::protocol
