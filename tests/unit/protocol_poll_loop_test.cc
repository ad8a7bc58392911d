#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "protocol/poll_loop.h"
#include "shared/unique_fd.h"

namespace testfarm::protocol {
namespace {

struct TestPipe {
  UniqueFd read;
  UniqueFd write;
  TestPipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0) {
      read.Reset(fds[0]);
      write.Reset(fds[1]);
    }
  }
  void Poke() const { ASSERT_EQ(::write(write.get(), "x", 1), 1); }
};

// Two connected inproc PAIR sockets.
struct InprocPair {
  zmq::context_t context;
  zmq::socket_t server{context, zmq::socket_type::pair};
  zmq::socket_t client{context, zmq::socket_type::pair};
  explicit InprocPair(const std::string& name) {
    server.bind("inproc://" + name);
    client.connect("inproc://" + name);
  }
};

TEST(PollLoop, TheTimeoutIsTheNearestDeadline) {
  FakeClock clock;
  PollLoop loop(clock);
  EXPECT_EQ(loop.TimeoutMs(), -1) << "no deadline: wait for an event";
  SteadyTime now = clock.Now();
  loop.WakeBy([&] { return std::optional<SteadyTime>(now + Millis(900)); });
  loop.WakeBy([] { return std::optional<SteadyTime>(); });
  loop.WakeBy([&] { return std::optional<SteadyTime>(now + Millis(250)); });
  EXPECT_EQ(loop.TimeoutMs(), 250);
  clock.Advance(Millis(300));
  EXPECT_EQ(loop.TimeoutMs(), 0) << "a passed deadline: do not wait";
}

TEST(PollLoop, APassedDeadlineEndsTheTurnWithNothingReady) {
  FakeClock clock;
  PollLoop loop(clock);
  TestPipe pipe;
  bool called = false;
  loop.WatchFd(pipe.read.get(), [&] { called = true; });
  loop.WakeBy([&] { return std::optional<SteadyTime>(clock.Now()); });
  EXPECT_EQ(loop.Turn(), 0);
  EXPECT_FALSE(called);
}

TEST(PollLoop, ReadyFdsAndSocketsCallTheirHandlersInRegistrationOrder) {
  FakeClock clock;
  InprocPair sockets("poll-loop-test");
  zmq::socket_t& server = sockets.server;
  zmq::socket_t& client = sockets.client;
  TestPipe first;
  TestPipe second;
  std::vector<std::string> calls;
  PollLoop loop(clock);
  loop.WatchFd(-1, [&] { calls.push_back("never"); });  // no fd: nothing to watch
  loop.WatchFd(first.read.get(), [&] { calls.push_back("fd"); });
  loop.WatchSocket(
      server.handle(), [] { return static_cast<short>(ZMQ_POLLIN); },
      [&](short revents) { calls.push_back(revents & ZMQ_POLLIN ? "socket in" : "socket ?"); });
  std::vector<int> changing;
  loop.WatchFds(
      [&](std::vector<int>* fds) { fds->insert(fds->end(), changing.begin(), changing.end()); },
      [&](int fd) { calls.push_back(fd == second.read.get() ? "set" : "set ?"); });

  first.Poke();
  second.Poke();  // not in the set yet
  client.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  EXPECT_EQ(loop.Turn(), 2);
  EXPECT_EQ(calls, (std::vector<std::string>{"fd", "socket in"}));

  calls.clear();
  changing = {second.read.get()};
  EXPECT_EQ(loop.Turn(), 3) << "the fd and the message are still there, and the set has one";
  EXPECT_EQ(calls, (std::vector<std::string>{"fd", "socket in", "set"}));
}

TEST(PollLoop, ASocketAskingForNoEventsSitsOutTheTurn) {
  FakeClock clock;
  InprocPair sockets("poll-loop-quiet");
  zmq::socket_t& server = sockets.server;
  sockets.client.send(zmq::str_buffer("hello"), zmq::send_flags::none);
  short wanted = 0;
  int calls = 0;
  PollLoop loop(clock);
  loop.WatchSocket(
      server.handle(), [&] { return wanted; }, [&](short) { ++calls; });
  loop.WakeBy([&] { return std::optional<SteadyTime>(clock.Now()); });
  EXPECT_EQ(loop.Turn(), 0);
  EXPECT_EQ(calls, 0);
  wanted = ZMQ_POLLIN;
  EXPECT_EQ(loop.Turn(), 1);
  EXPECT_EQ(calls, 1);
}

TEST(PollLoop, EndTurnSkipsTheRestOfTheTurn) {
  FakeClock clock;
  TestPipe stop;
  TestPipe work;
  bool stopped = false;
  bool worked = false;
  PollLoop loop(clock);
  loop.WatchFd(stop.read.get(), [&] {
    stopped = true;
    loop.EndTurn();
  });
  loop.WatchFd(work.read.get(), [&] { worked = true; });
  stop.Poke();
  work.Poke();
  loop.Turn();
  EXPECT_TRUE(stopped);
  EXPECT_FALSE(worked);
}

}  // namespace
}  // namespace testfarm::protocol
