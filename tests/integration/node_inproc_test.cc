// The coordinator and the worker node wired over ZeroMQ, as `testfarm run` wires them, plus
// hostile peers on each side: garbage frames must be logged, answered with an error and dropped,
// and the run must finish with every test reported exactly once.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "coordinator/coordinator.h"
#include "protocol/codec.h"
#include "protocol/wire.h"
#include "worker/worker_node.h"

namespace testfarm {
namespace {

using coordinator::JobState;
using coordinator::TestReport;

std::string Fixture(const std::string& name) {
  return std::string(TESTFARM_FIXTURE_DIR) + "/" + name;
}

class RecordingReporter final : public coordinator::Reporter {
 public:
  void OnRunStart(std::size_t) override {}
  void OnWorkerJoined(const std::string& name, unsigned slots) override {
    std::lock_guard<std::mutex> lock(mutex_);
    joined.push_back(name + "/" + std::to_string(slots));
    joined_cv_.notify_all();
  }
  // Waits (bounded) until a worker has joined; false if none did in time.
  bool WaitForJoin(std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> lock(mutex_);
    return joined_cv_.wait_for(lock, bound, [&] { return !joined.empty(); });
  }
  void OnTestStarted(const std::string&, const std::string&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    ++started_;
    joined_cv_.notify_all();
  }
  // Waits (bounded) until a worker has said it started a test; false if none did in time.
  bool WaitForStart(std::chrono::milliseconds bound) {
    std::unique_lock<std::mutex> lock(mutex_);
    return joined_cv_.wait_for(lock, bound, [&] { return started_ > 0; });
  }
  void OnTestFinished(const TestReport& report, std::size_t) override { reports.push_back(report); }
  void OnRunEnd(const coordinator::RunSummary& s) override { summary = s; }

  const TestReport* Find(const std::string& name) const {
    for (const auto& r : reports)
      if (r.name == name) return &r;
    return nullptr;
  }

  std::vector<std::string> joined;  // read it only after the run ended
  std::vector<TestReport> reports;
  coordinator::RunSummary summary;

 private:
  std::mutex mutex_;
  std::condition_variable joined_cv_;
  int started_ = 0;
};

coordinator::TestSpec Spec(const std::string& fixture, Millis timeout = Millis(0)) {
  coordinator::TestSpec spec;
  spec.name = fixture;
  spec.suite = fixture;
  spec.EditSettings().command = {Fixture(fixture)};
  spec.timeout = timeout;
  return spec;
}

worker::WorkerNodeOptions NodeOptions(const std::string& endpoint, const std::string& name,
                                      unsigned slots) {
  worker::WorkerNodeOptions options;
  options.endpoint = endpoint;
  options.name = name;
  options.slots = slots;
  return options;
}

std::vector<zmq::message_t> RecvWithin(zmq::socket_t& socket, int timeout_ms) {
  socket.set(zmq::sockopt::rcvtimeo, timeout_ms);
  std::vector<zmq::message_t> frames;
  (void)zmq::recv_multipart(socket, std::back_inserter(frames));
  return frames;
}

TEST(NodeInproc, CoordinatorAndWorkerRunEveryTestOnce) {
  zmq::context_t context;
  SteadyClock clock;
  RecordingReporter reporter;
  std::vector<coordinator::TestSpec> tests = {Spec("tf_pass"), Spec("tf_fail"), Spec("tf_segv"),
                                              Spec("tf_hang", Millis(300)), Spec("tf_env")};
  coordinator::CoordinatorOptions options;
  options.scheduler.kill_grace = Millis(200);
  coordinator::Coordinator coord(context, clock, tests, options, reporter);
  auto endpoint = coord.Bind("inproc://node-test-1");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;

  std::thread worker([&] {
    worker::WorkerNode node(context, clock, NodeOptions(*endpoint, "w1", 2));
    auto served = node.ServeOneRun();
    EXPECT_TRUE(served.ok()) << served.error().message;
  });
  auto summary = coord.Run(-1);
  worker.join();

  EXPECT_EQ(reporter.reports.size(), tests.size());
  EXPECT_EQ(summary.passed, 2u);
  EXPECT_EQ(summary.failed, 3u);
  ASSERT_NE(reporter.Find("tf_segv"), nullptr);
  EXPECT_EQ(reporter.Find("tf_segv")->result->state, ExitState::Signaled(SIGSEGV, false))
      << reporter.Find("tf_segv")->result->state.Describe();
  EXPECT_EQ(reporter.Find("tf_hang")->result->state.kind(), ExitState::Kind::kTimedOut);
  EXPECT_EQ(reporter.Find("tf_env")->worker, "w1");
  EXPECT_NE(reporter.Find("tf_env")->result->stdout_text.find("TESTFARM_WORKER=w1"),
            std::string::npos);
  EXPECT_EQ(reporter.joined, std::vector<std::string>{"w1/2"});
}

// The default logger writes into a string while it lives; the one before comes back after.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(text_);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("captured", sink));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  CapturedLog(const CapturedLog&) = delete;
  CapturedLog& operator=(const CapturedLog&) = delete;
  std::string text() const { return text_.str(); }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream text_;
};

int Lines(const std::string& text, const std::string& needle) {
  std::istringstream in(text);
  int n = 0;
  for (std::string line; std::getline(in, line);) n += line.find(needle) != std::string::npos;
  return n;
}

// Garbage is answered with an error and dropped, the run goes on, and the log stays short: 2000
// bad frames make a few lines, not 2000.
TEST(NodeInproc, CoordinatorAnswersGarbageWithErrorsAndKeepsRunning) {
  CapturedLog log;
  zmq::context_t context;
  SteadyClock clock;
  RecordingReporter reporter;
  coordinator::Coordinator coord(context, clock, {Spec("tf_pass")}, {}, reporter);
  auto endpoint = coord.Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  coordinator::RunSummary summary;
  std::thread run([&] { summary = coord.Run(-1); });

  zmq::socket_t hostile(context, zmq::socket_type::dealer);
  hostile.connect(*endpoint);
  std::string valid = protocol::EncodeBody(protocol::Heartbeat{});
  std::vector<std::vector<std::string>> garbage = {
      {"just one frame"},
      {"nottestfarm/1", valid},
      {"testfarm/99", valid},
      {protocol::kHeader, std::string("\x85\xa4type", 6)},  // truncated map
      {protocol::kHeader, std::string("\xc1", 1)},          // never-used msgpack byte
      {protocol::kHeader, protocol::EncodeBody(protocol::Hello{"x", 0, "", "", {}})},  // 0 slots
      {protocol::kHeader, valid, "extra frame"},
  };
  for (const auto& frames : garbage) {
    std::vector<zmq::const_buffer> parts;
    for (const auto& f : frames) parts.push_back(zmq::buffer(f));
    zmq::send_multipart(hostile, parts);
    auto reply = RecvWithin(hostile, 10000);
    ASSERT_EQ(reply.size(), 2u) << "no error reply for frame set starting '" << frames[0] << "'";
    auto decoded = protocol::Decode(reply[0].to_string_view(), reply[1].to_string_view());
    ASSERT_TRUE(std::holds_alternative<protocol::Message>(decoded));
    EXPECT_TRUE(std::holds_alternative<protocol::ErrorReply>(std::get<protocol::Message>(decoded)));
  }
  for (int i = 0; i < 2000; ++i) {
    std::string frame = "garbage " + std::to_string(i);
    zmq::send_multipart(hostile, std::vector<zmq::const_buffer>{zmq::buffer(frame)});
    ASSERT_EQ(RecvWithin(hostile, 10000).size(), 2u) << "each bad frame is still answered";
  }

  std::thread worker([&] {
    worker::WorkerNode node(context, clock, NodeOptions(*endpoint, "good", 1));
    EXPECT_TRUE(node.ServeOneRun().ok());
  });
  run.join();
  worker.join();
  EXPECT_EQ(summary.passed, 1u);
  EXPECT_EQ(reporter.reports.size(), 1u);
  std::string text = log.text();
  int said = Lines(text, "bad frame");
  EXPECT_GE(said, 2) << "the first at once, the rest counted by the end:\n" << text;
  EXPECT_LE(said, 5) << text;
  EXPECT_NE(text.find("more bad frames from a peer that has not joined dropped"), std::string::npos)
      << text;
}

TEST(NodeInproc, AnOversizedFrameIsRefusedAndTheRunGoesOn) {
  zmq::context_t context;
  SteadyClock clock;
  RecordingReporter reporter;
  coordinator::Coordinator coord(context, clock, {Spec("tf_pass")}, {}, reporter);
  auto endpoint = coord.Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  coordinator::RunSummary summary;
  std::thread run([&] { summary = coord.Run(-1); });

  // Over ZMQ_MAXMSGSIZE: the coordinator's socket drops the connection before reading it all.
  zmq::socket_t hostile(context, zmq::socket_type::dealer);
  hostile.set(zmq::sockopt::linger, 0);
  hostile.connect(*endpoint);
  std::string huge(protocol::kMaxFrameBytes + 8192, 'x');
  std::vector<zmq::const_buffer> parts = {zmq::buffer(std::string_view(protocol::kHeader)),
                                          zmq::buffer(huge)};
  zmq::send_multipart(hostile, parts);
  auto reply = RecvWithin(hostile, 2000);
  EXPECT_TRUE(reply.empty()) << "an oversized message gets no answer";

  std::thread worker([&] {
    worker::WorkerNode node(context, clock, NodeOptions(*endpoint, "good", 1));
    EXPECT_TRUE(node.ServeOneRun().ok());
  });
  run.join();
  worker.join();
  EXPECT_EQ(summary.passed, 1u);
  EXPECT_EQ(reporter.reports.size(), 1u);
}

TEST(NodeInproc, ARunWhoseOnlyWorkerIsLostStopsInsteadOfWaitingForever) {
  zmq::context_t context;
  zmq::context_t worker_context;  // the worker's own, so it can die alone
  SteadyClock clock;
  RecordingReporter reporter;
  coordinator::CoordinatorOptions options;
  options.liveness = LivenessOptions{Millis(100), 3};
  options.scheduler.kill_grace = Millis(100);
  options.stop_slack = Millis(200);
  coordinator::Coordinator coord(
      context, clock, {Spec("tf_hang"), Spec("tf_pass"), Spec("tf_pass")}, options, reporter);
  auto endpoint = coord.Bind("tcp://127.0.0.1:*");
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  coordinator::RunSummary summary;
  std::thread run([&] { summary = coord.Run(-1); });
  std::thread worker([&] {
    auto worker_options = NodeOptions(*endpoint, "doomed", 1);
    worker_options.liveness = options.liveness;
    worker::WorkerNode node(worker_context, clock, worker_options);
    auto end = node.ServeOneRun();
    ASSERT_TRUE(end.ok()) << end.error().message;
    EXPECT_EQ(*end, worker::RunEnd::kContextClosed);
  });
  // Its first test hangs; the worker then dies with it running. (Waiting only for the join
  // could lose the worker before the run opened: then the run rightly waits for another.)
  ASSERT_TRUE(reporter.WaitForStart(std::chrono::seconds(10)));
  worker_context.shutdown();
  worker.join();
  run.join();
  EXPECT_EQ(summary.stop_reason, "every worker was lost");
  EXPECT_EQ(summary.total(), 3u);
  EXPECT_EQ(summary.passed, 0u);
}

TEST(NodeInproc, WorkerSurvivesGarbageFromItsCoordinator) {
  zmq::context_t context;
  SteadyClock clock;
  zmq::socket_t fake(context, zmq::socket_type::router);
  fake.bind("inproc://fake-coordinator");
  std::thread worker([&] {
    worker::WorkerNode node(context, clock, NodeOptions("inproc://fake-coordinator", "w", 1));
    EXPECT_TRUE(node.ServeOneRun().ok());
  });

  auto hello = RecvWithin(fake, 10000);
  ASSERT_EQ(hello.size(), 3u);
  std::string id = hello[0].to_string();
  auto send = [&](std::vector<std::string> frames) {
    std::vector<zmq::const_buffer> parts{zmq::buffer(id)};
    for (const auto& f : frames) parts.push_back(zmq::buffer(f));
    zmq::send_multipart(fake, parts);
  };
  auto expect_error_reply = [&] {
    auto reply = RecvWithin(fake, 10000);
    ASSERT_EQ(reply.size(), 3u);
    auto decoded = protocol::Decode(reply[1].to_string_view(), reply[2].to_string_view());
    ASSERT_TRUE(std::holds_alternative<protocol::Message>(decoded));
    EXPECT_TRUE(std::holds_alternative<protocol::ErrorReply>(std::get<protocol::Message>(decoded)));
  };
  send({"garbage"});
  expect_error_reply();
  send({std::string(protocol::kName) + "/" + std::to_string(protocol::kVersion + 1),
        protocol::EncodeBody(protocol::Heartbeat{})});
  expect_error_reply();
  send({protocol::kHeader, "\xff\xff\xff"});
  expect_error_reply();

  protocol::JobAssign job;
  job.lease = 7;
  job.job_id = 3;
  job.name = "tf_pass";
  job.argv = {Fixture("tf_pass")};
  send({protocol::kHeader, protocol::EncodeBody(job)});
  // The next message that is not a heartbeat (one may come between any two on a slow machine).
  auto next_message = [&] {
    while (true) {
      auto reply = RecvWithin(fake, 10000);
      EXPECT_EQ(reply.size(), 3u);
      if (reply.size() != 3u) return protocol::Message(protocol::Bye{"no reply"});
      auto decoded = protocol::Decode(reply[1].to_string_view(), reply[2].to_string_view());
      EXPECT_TRUE(std::holds_alternative<protocol::Message>(decoded));
      if (!std::holds_alternative<protocol::Message>(decoded))
        return protocol::Message(protocol::Bye{"bad"});
      protocol::Message message = std::get<protocol::Message>(decoded);
      if (!std::holds_alternative<protocol::Heartbeat>(message)) return message;
    }
  };
  // The worker says it started the job, then reports it.
  protocol::Message started = next_message();
  ASSERT_TRUE(std::holds_alternative<protocol::JobStarted>(started)) << protocol::TypeName(started);
  EXPECT_EQ(std::get<protocol::JobStarted>(started).lease, 7u);
  protocol::Message reported = next_message();
  auto* result = std::get_if<protocol::JobResult>(&reported);
  ASSERT_NE(result, nullptr);
  EXPECT_EQ(result->lease, 7u);
  EXPECT_EQ(result->job_id, 3u);
  EXPECT_TRUE(result->state.passed());

  send({protocol::kHeader, protocol::EncodeBody(protocol::Bye{"done"})});
  worker.join();
}

}  // namespace
}  // namespace testfarm
