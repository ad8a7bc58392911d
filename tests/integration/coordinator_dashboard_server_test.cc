// The dashboard's HTTP server on a loopback port: real requests, real live streams, bad input,
// the token, too many streams and a browser that stops reading.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>

#include "coordinator/dashboard_server.h"
#include "coordinator/history_store.h"

namespace testfarm::coordinator {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

struct Served {
  std::unique_ptr<DashboardServer> server;
  std::string host;
  int port = 0;
};

Served Serve(DashboardOptions options = {}) {
  static SteadyClock clock;
  if (options.address.empty()) options.address = "127.0.0.1:0";
  options.mode = "serve";
  options.version = "test";
  auto server = DashboardServer::Start(std::move(options), clock);
  EXPECT_TRUE(server) << (server ? "" : server.error().message);
  if (!server) return {};
  Served served;
  served.server = std::move(*server);
  std::smatch m;
  std::string url = served.server->url();
  EXPECT_TRUE(std::regex_match(url, m, std::regex("http://127\\.0\\.0\\.1:([0-9]+)/")));
  served.host = "127.0.0.1";
  served.port = std::stoi(m[1]);
  return served;
}

RunStartView Start(const std::string& id, std::size_t n) {
  RunStartView s;
  s.id = id;
  s.started_ms = UnixMillisNow();
  for (std::size_t i = 0; i < n; ++i) s.names.push_back("suite::T." + std::to_string(i));
  return s;
}

TestReport Report(std::size_t index, TestStatus state, const std::string& out = "") {
  TestReport r;
  r.test = index;
  r.name = "suite::T." + std::to_string(index);
  r.state = state;
  r.worker = "w1";
  protocol::JobResult result;
  result.stdout_text = out;
  r.result = result;
  return r;
}

FleetView Fleet(int workers, const std::string& name_padding = "") {
  FleetView view;
  view.at_ms = UnixMillisNow();
  for (int w = 0; w < workers; ++w) {
    WorkerView worker;
    worker.name = "worker-" + std::to_string(w) + name_padding;
    worker.slots = 16;
    worker.heard_at_ms = view.at_ms;
    view.workers.push_back(worker);
  }
  RunView run;
  run.id = "run-1";
  run.state = "running";
  run.tests = 100;
  view.runs.push_back(run);
  return view;
}

// A connection to the server on `port`: sends `request`, returns what comes back until the server
// closes or 5 s pass.
std::string RawRequest(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      ::write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
    auto until = std::chrono::steady_clock::now() + 5s;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      pollfd readable{fd, POLLIN, 0};
      if (left.count() <= 0 || ::poll(&readable, 1, static_cast<int>(left.count())) != 1) break;
      char buffer[4096];
      ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;
      answer.append(buffer, static_cast<std::size_t>(n));
      if (answer.find("\r\n\r\n") != std::string::npos) break;
    }
  }
  ::close(fd);
  return answer;
}

TEST(DashboardServer, AnswersTheApiAndThePageAndRefusesBadInputWithoutDisturbingTheRun) {
  Served s = Serve();
  ASSERT_TRUE(s.server);
  s.server->RunStarted(Start("run-1", 3));
  s.server->Fleet(Fleet(2));
  s.server->TestFinished("run-1", Report(0, TestStatus::kFailed, "it broke\n"));
  ASSERT_TRUE(s.server->WaitApplied(5000ms));
  httplib::Client client(s.host, s.port);

  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<h1"), std::string::npos);
  EXPECT_EQ(client.Get("/app.js")->status, 200);
  EXPECT_EQ(Json::parse(client.Get("/api/v1/workers")->body)["total"], 2);
  auto output = client.Get("/api/v1/runs/run-1/tests/0/output");
  EXPECT_EQ(Json::parse(output->body)["attempts"][0]["stdout"], "it broke\n");

  auto bad = client.Get("/api/v1/runs/run-1/tests?limit=abc");
  EXPECT_EQ(bad->status, 400);
  EXPECT_NE(Json::parse(bad->body)["error"].get<std::string>().find("limit"), std::string::npos);
  EXPECT_EQ(client.Get("/no/such/page")->status, 404);
  EXPECT_EQ(client.Get("/api/v1/runs/run-404/tests")->status, 404);
  auto post = client.Post("/api/v1/runs", "x", "text/plain");
  EXPECT_EQ(post->status, 405);
  // A body larger than any request needs is refused before it is read.
  std::string oversized = RawRequest(
      s.port, "GET /api/v1/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\n");
  EXPECT_EQ(oversized.substr(0, 12), "HTTP/1.1 413") << oversized;
  auto long_uri = client.Get("/api/v1/runs?" + std::string(20000, 'a'));
  ASSERT_TRUE(long_uri);
  EXPECT_EQ(long_uri->status, 414);

  // A small body is read and the request answered; the connection stays in step.
  EXPECT_EQ(client.Post("/api/v1/runs", "x", "text/plain")->status, 405);
  EXPECT_EQ(client.Get("/api/v1/farm")->status, 200);
  // A page elsewhere, its name resolving to 127.0.0.1 (DNS rebinding), is refused.
  std::string rebound =
      RawRequest(s.port, "GET /api/v1/runs HTTP/1.1\r\nHost: evil.example\r\n\r\n");
  EXPECT_EQ(rebound.substr(0, 12), "HTTP/1.1 403") << rebound;
  EXPECT_TRUE(IsLoopbackHost("localhost:8080"));
  EXPECT_TRUE(IsLoopbackHost("[::1]:80"));
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1"));
  EXPECT_FALSE(IsLoopbackHost("evil.example:8080"));
  EXPECT_FALSE(IsLoopbackHost("10.0.0.1:80"));

  // The run went on: what comes next is still shown.
  s.server->TestFinished("run-1", Report(1, TestStatus::kPassed));
  ASSERT_TRUE(s.server->WaitApplied(5000ms));
  Json runs = Json::parse(client.Get("/api/v1/runs")->body);
  EXPECT_EQ(runs["runs"][0]["counts"]["passed"], 1);
  EXPECT_EQ(runs["runs"][0]["counts"]["failed"], 1);
}

TEST(DashboardServer, StoppingRightAfterStartingEndsPromptly) {
  // httplib ignores a stop asked before its listener runs; the server must still end.
  for (int i = 0; i < 20; ++i) {
    Served s = Serve();
    ASSERT_TRUE(s.server);
  }
}

TEST(DashboardServer, ANonLoopbackAddressNeedsATokenAndTheApiChecksIt) {
  SteadyClock clock;
  DashboardOptions open;
  open.address = "0.0.0.0:0";
  auto exposed = DashboardServer::Start(open, clock);
  ASSERT_FALSE(exposed);
  EXPECT_NE(exposed.error().message.find("--http-token"), std::string::npos);
  EXPECT_FALSE(ParseHttpAddress("127.0.0.1:99999"));
  EXPECT_FALSE(ParseHttpAddress("example.com:80"));
  EXPECT_TRUE(ParseHttpAddress("8080")->loopback);
  EXPECT_TRUE(ParseHttpAddress("[::1]:0")->loopback);
  EXPECT_FALSE(ParseHttpAddress("10.1.2.3:80")->loopback);

  DashboardOptions options;
  options.token = "s3cret";
  Served s = Serve(options);
  ASSERT_TRUE(s.server);
  httplib::Client client(s.host, s.port);
  EXPECT_EQ(client.Get("/api/v1/farm")->status, 401);
  EXPECT_EQ(client.Get("/api/v1/farm", {{"Authorization", "Bearer nope"}})->status, 401);
  EXPECT_EQ(client.Get("/api/v1/events")->status, 401);
  EXPECT_EQ(client.Get("/api/v1/farm", {{"Authorization", "Bearer s3cret"}})->status, 200);
  EXPECT_EQ(client.Get("/")->status, 200);  // the page holds no data
}

// Reads a live stream's events until `enough(events)` or the bound.
std::vector<std::pair<std::string, Json>> ReadStream(
    const Served& s, std::chrono::milliseconds bound,
    const std::function<bool(const std::vector<std::pair<std::string, Json>>&)>& enough) {
  std::vector<std::pair<std::string, Json>> events;
  httplib::Client client(s.host, s.port);
  client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(bound).count() + 1, 0);
  std::string buffer;
  auto until = std::chrono::steady_clock::now() + bound;
  client.Get("/api/v1/events", [&](const char* data, std::size_t size) {
    buffer.append(data, size);
    for (std::size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
      std::string block = buffer.substr(0, end);
      buffer.erase(0, end + 2);
      // "event: TYPE\ndata: JSON" (std::regex would recurse through a long line).
      std::size_t at = block.find("\ndata: ");
      if (block.rfind("event: ", 0) == 0 && at != std::string::npos) {
        events.emplace_back(block.substr(7, at - 7), Json::parse(block.substr(at + 7)));
      }
    }
    return !enough(events) && std::chrono::steady_clock::now() < until;
  });
  return events;
}

TEST(DashboardServer, ALiveStreamStartsWithASnapshotAndCoalescesWhatFollows) {
  DashboardOptions options;
  options.stream_interval = 250ms;
  Served s = Serve(options);
  ASSERT_TRUE(s.server);
  s.server->RunStarted(Start("run-1", 2000));
  ASSERT_TRUE(s.server->WaitApplied(5000ms));
  std::thread feeder;
  auto begun = std::chrono::steady_clock::now();
  using Events = std::vector<std::pair<std::string, Json>>;
  auto events = ReadStream(s, 10000ms, [&](const Events& got) {
    if (got.size() == 1 && !feeder.joinable()) {
      // After the snapshot: 2000 tests finish as fast as they can be pushed.
      feeder = std::thread([&] {
        for (std::size_t i = 0; i < 2000; ++i) {
          s.server->TestFinished(
              "run-1", Report(i, i % 100 == 0 ? TestStatus::kFailed : TestStatus::kPassed));
        }
      });
    }
    std::size_t passed = 0;
    for (const auto& [type, data] : got) {
      for (const auto& run : data["runs"]) passed = run["counts"]["passed"].get<std::size_t>();
    }
    return passed == 1980;
  });
  auto took = std::chrono::steady_clock::now() - begun;
  if (feeder.joinable()) feeder.join();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[0].first, "snapshot");
  EXPECT_EQ(events[0].second["runs"][0]["tests"], 2000);
  std::size_t failures = 0;
  for (std::size_t i = 1; i < events.size(); ++i) {
    EXPECT_EQ(events[i].first, "update");
    failures +=
        events[i].second["failures"].size() + events[i].second["failures_more"].get<std::size_t>();
  }
  EXPECT_EQ(failures, 20u);  // every failure told once
  // Coalesced: no more than one update per interval (plus the first).
  auto intervals = std::chrono::duration_cast<std::chrono::milliseconds>(took) / 250ms;
  EXPECT_LE(events.size() - 1, static_cast<std::size_t>(intervals) + 2) << events.size();
}

TEST(DashboardServer, TooManyStreamsAre503AndAStreamThatStopsReadingIsDropped) {
  DashboardOptions options;
  options.max_streams = 2;
  options.stall_timeout = 1000ms;
  options.stream_interval = 10ms;
  Served s = Serve(options);
  ASSERT_TRUE(s.server);

  // A browser that connects, asks for the stream and never reads, with a tiny receive buffer.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  int small = 1024;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(s.port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  std::string request = "GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  ASSERT_EQ(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  // Its stream is open once the headers come back.
  pollfd readable{fd, POLLIN, 0};
  ASSERT_EQ(::poll(&readable, 1, 5000), 1);

  // A second stream fills the limit; a third is refused.
  std::promise<void> second_open;
  std::atomic<bool> stop_second{false};
  std::thread second([&] {
    httplib::Client client(s.host, s.port);
    bool told = false;
    client.Get("/api/v1/events", [&](const char*, std::size_t) {
      if (!std::exchange(told, true)) second_open.set_value();
      return !stop_second.load();
    });
  });
  s.server->RunStarted(Start("run-1", 100));
  // Big updates (long worker names) until the unread stream's buffers are full.
  std::string padding(4000, 'p');
  std::atomic<bool> feeding{true};
  std::thread feeder([&] {
    while (feeding) {
      s.server->Fleet(Fleet(64, padding + std::to_string(std::rand())));
      s.server->WaitApplied(1000ms);
    }
  });
  ASSERT_EQ(second_open.get_future().wait_for(10s), std::future_status::ready);
  httplib::Client third(s.host, s.port);
  auto answer = third.Get("/api/v1/events");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 503);
  EXPECT_NE(answer->body.find("too many live streams"), std::string::npos);
  EXPECT_TRUE(s.server->WaitDropped(1, 30000ms));
  feeding = false;
  feeder.join();
  stop_second = true;
  second.join();
  ::close(fd);
  httplib::Client client(s.host, s.port);
  Json farm = Json::parse(client.Get("/api/v1/farm")->body);
  EXPECT_EQ(farm["streams_dropped"], 1);
}

}  // namespace
}  // namespace testfarm::coordinator
