#include "coordinator/coordinator.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>

#include "protocol/wire.h"

namespace testfarm::coordinator {

namespace {

std::vector<Millis> TimeoutsOf(const std::vector<TestSpec>& tests) {
  std::vector<Millis> timeouts;
  timeouts.reserve(tests.size());
  for (const TestSpec& test : tests) timeouts.push_back(test.timeout);
  return timeouts;
}

Verdict VerdictOf(const ExitState& state) {
  if (state.passed()) return Verdict::kPassed;
  if (state.kind() == ExitState::Kind::kCancelled) return Verdict::kCancelled;
  return Verdict::kFailed;
}

}  // namespace

Coordinator::Coordinator(zmq::context_t& context, const Clock& clock, std::vector<TestSpec> tests,
                         CoordinatorOptions options, Reporter& reporter)
    : socket_(context, zmq::socket_type::router),
      clock_(clock),
      tests_(std::move(tests)),
      options_(options),
      reporter_(reporter),
      scheduler_(clock, options.scheduler, TimeoutsOf(tests_)),
      reported_(tests_.size(), false) {
  protocol::ConfigureSocket(socket_);
  // Sending to a worker that is gone must fail loudly, not vanish.
  socket_.set(zmq::sockopt::router_mandatory, 1);
}

Result<std::string> Coordinator::Bind(const std::string& endpoint) {
  try {
    socket_.bind(endpoint);
    return socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen on " + endpoint + ": " + e.what()};
  }
}

void Coordinator::SendTo(const std::string& identity, const protocol::Message& message) {
  try {
    if (!protocol::Send(socket_, message, &identity)) {
      spdlog::error("coordinator: could not send {} to worker (queue full)",
                    protocol::TypeName(message));
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the worker is gone. Its jobs go back to the queue.
    auto it = workers_.find(identity);
    std::string name = it == workers_.end() ? "unknown" : it->second.name;
    spdlog::warn("coordinator: worker {} unreachable ({}); requeueing its jobs", name, e.what());
    ForgetWorker(identity, "the worker became unreachable");
  }
}

void Coordinator::ForgetWorker(const std::string& identity, const std::string& why) {
  // While running, its jobs go back to the queue; once stopped, they end as cancelled.
  for (JobId job : scheduler_.RemoveWorker(identity)) {
    Report(job, JobState::kCancelled, {}, why, {});
  }
  workers_.erase(identity);
}

void Coordinator::OnHello(const std::string& identity, const protocol::Hello& hello) {
  if (workers_.count(identity) != 0) {
    spdlog::warn("coordinator: duplicate hello from worker {}; ignored", hello.worker_name);
    return;
  }
  if (hello.slots == 0) {
    SendTo(identity, protocol::ErrorReply{"hello: a worker needs at least one slot"});
    return;
  }
  workers_[identity] = WorkerInfo{hello.worker_name, hello.slots};
  scheduler_.AddWorker(identity, hello.slots);
  SendTo(identity, protocol::Welcome{"run"});
  reporter_.OnWorkerJoined(hello.worker_name, hello.slots);
}

void Coordinator::Report(JobId job, JobState state, std::optional<protocol::JobResult> result,
                         std::string reason, const std::string& worker) {
  if (reported_[job]) return;  // each test is reported exactly once
  reported_[job] = true;
  TestReport report;
  report.name = tests_[job].name;
  report.suite = tests_[job].name;
  report.state = state;
  report.result = std::move(result);
  report.reason = std::move(reason);
  report.worker = worker;
  switch (state) {
    case JobState::kPassed:
      ++summary_.passed;
      break;
    case JobState::kCancelled:
      ++summary_.cancelled;
      break;
    case JobState::kNotRun:
      ++summary_.not_run;
      break;
    default:
      ++summary_.failed;
      summary_.failures.push_back(report);
      break;
  }
  reporter_.OnTestFinished(report, scheduler_.outstanding());
}

void Coordinator::OnResult(const std::string& identity, protocol::JobResult& result) {
  auto worker = workers_.find(identity);
  if (worker == workers_.end()) {
    spdlog::warn("coordinator: result from an unknown worker dropped (lease {})", result.lease);
    return;
  }
  auto job = scheduler_.OnResult(identity, result.lease, VerdictOf(result.state));
  if (!job) {
    spdlog::info("coordinator: stale result for lease {} dropped", result.lease);
    return;
  }
  if (*job != result.job_id) {
    spdlog::warn("coordinator: lease {} reported job {} but was job {}; trusting the lease",
                 result.lease, result.job_id, *job);
  }
  Report(*job, scheduler_.state(*job), std::move(result), {}, worker->second.name);
}

void Coordinator::HandleMessage(const std::string& identity, protocol::Message& message) {
  if (auto* hello = std::get_if<protocol::Hello>(&message)) {
    OnHello(identity, *hello);
  } else if (auto* result = std::get_if<protocol::JobResult>(&message)) {
    OnResult(identity, *result);
  } else if (std::holds_alternative<protocol::Bye>(message)) {
    spdlog::info("coordinator: worker left");
    ForgetWorker(identity, "the worker left");
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    spdlog::error("coordinator: worker reported an error: {}", error->text);
  } else if (std::holds_alternative<protocol::Heartbeat>(message)) {
    // Liveness is tracked by later work; a heartbeat needs no answer today.
  } else {
    spdlog::warn("coordinator: unexpected {} message from a worker; ignored",
                 protocol::TypeName(message));
    SendTo(identity, protocol::ErrorReply{std::string("unexpected message type ") +
                                          protocol::TypeName(message)});
  }
}

void Coordinator::HandleIncoming() {
  while (auto incoming = protocol::Receive(socket_, /*router=*/true)) {
    if (auto* error = std::get_if<protocol::DecodeError>(&incoming->message)) {
      spdlog::warn("coordinator: bad frame dropped: {}: {}", protocol::CodeName(error->code),
                   error->message);
      SendTo(incoming->identity, protocol::ErrorReply{error->message});
      continue;
    }
    HandleMessage(incoming->identity, std::get<protocol::Message>(incoming->message));
  }
}

void Coordinator::PerformActions() {
  for (Action& action : scheduler_.TakeActions()) {
    if (auto* assign = std::get_if<AssignAction>(&action)) {
      const TestSpec& test = tests_[assign->job];
      protocol::JobAssign job;
      job.lease = assign->lease;
      job.job_id = assign->job;
      job.name = test.name;
      job.argv = test.argv;
      job.env = test.env;
      job.cwd = test.cwd;
      job.timeout_ms = static_cast<uint64_t>(test.timeout.count());
      job.kill_grace_ms = static_cast<uint64_t>(options_.scheduler.kill_grace.count());
      SendTo(assign->worker, job);
    } else {
      const auto& cancel = std::get<CancelAction>(action);
      SendTo(cancel.worker, protocol::Cancel{cancel.lease});
    }
  }
}

void Coordinator::OnSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (::read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
  SteadyTime now = clock_.Now();
  if (!first_signal_at_) {
    first_signal_at_ = now;
    summary_.interrupted = true;
    spdlog::warn("coordinator: interrupted; stopping running tests");
    scheduler_.Stop("interrupted");
  } else if (now - *first_signal_at_ >= kSecondSignalAfter) {
    // A second signal: stop waiting for the cancelled tests. (One sent to the process and then
    // to its group, as `timeout` does, arrives twice at once; that counts as one.)
    give_up_at_ = now;
  }
}

void Coordinator::AbandonOutstanding(const std::string& why) {
  for (JobId job : scheduler_.AbandonOutstanding()) Report(job, JobState::kCancelled, {}, why, {});
}

long Coordinator::PollTimeoutMs() const {
  std::optional<SteadyTime> next = scheduler_.NextDeadline();
  if (give_up_at_ && (!next || *give_up_at_ < *next)) next = give_up_at_;
  if (!next) return -1;
  return MillisUntil(*next, clock_.Now());
}

void Coordinator::Loop(int signal_fd) {
  while (!scheduler_.Done()) {
    scheduler_.Dispatch();
    PerformActions();
    if (scheduler_.Done()) break;
    zmq_pollitem_t items[2] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {nullptr, signal_fd, ZMQ_POLLIN, 0}};
    protocol::Poll(items, signal_fd >= 0 ? 2 : 1, PollTimeoutMs());
    if (items[0].revents & ZMQ_POLLIN) HandleIncoming();
    if (signal_fd >= 0 && (items[1].revents & ZMQ_POLLIN)) OnSignal(signal_fd);
    for (JobId job : scheduler_.OnTimers()) {
      Report(job, JobState::kExpired, {}, "no result from the worker within the test's timeout",
             {});
    }
    // Once stopped, cancelled jobs get the kill grace plus some slack to report back.
    if (scheduler_.stopped() && !give_up_at_) {
      give_up_at_ = clock_.Now() + options_.scheduler.kill_grace + options_.stop_slack;
    }
    if (give_up_at_ && clock_.Now() >= *give_up_at_) {
      PerformActions();
      AbandonOutstanding("the worker did not confirm the cancellation in time");
    }
  }
}

RunSummary Coordinator::Run(int signal_fd) {
  SteadyTime started = clock_.Now();
  reporter_.OnRunStart(tests_.size());
  try {
    Loop(signal_fd);
    PerformActions();
  } catch (const zmq::error_t& e) {
    spdlog::error("coordinator: socket failure: {}", e.what());
    scheduler_.Stop(std::string("socket failure: ") + e.what());
    AbandonOutstanding("the coordinator's socket failed");
  }
  // Tests never started because the run stopped are counted, not listed one by one.
  for (JobId job = 0; job < tests_.size(); ++job) {
    if (scheduler_.state(job) == JobState::kNotRun) ++summary_.not_run;
  }
  for (const auto& [identity, info] : workers_) SendTo(identity, protocol::Bye{"run finished"});
  summary_.stop_reason = scheduler_.stop_reason();
  summary_.wall = std::chrono::duration_cast<Millis>(clock_.Now() - started);
  reporter_.OnRunEnd(summary_);
  return summary_;
}

}  // namespace testfarm::coordinator
