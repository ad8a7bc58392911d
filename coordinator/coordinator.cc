#include "coordinator/coordinator.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "coordinator/gtest.h"
#include "coordinator/test_order.h"
#include "protocol/wire.h"
#include "shared/duration.h"
#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

namespace {

bool IsFailure(JobState state) {
  return state == JobState::kFailed || state == JobState::kExpired;
}

// What the scheduler needs to know of a job's end: whether its tests passed as far as the jobs
// waiting for them are concerned (a test that skipped itself or was expected to fail did).
Verdict VerdictOf(const JobVerdicts& verdicts, const ExitState& state) {
  if (state.kind() == ExitState::Kind::kCancelled) return Verdict::kCancelled;
  bool cancelled = false;
  for (const CaseVerdict& v : verdicts.decided) {
    if (IsFailure(v.state)) return Verdict::kFailed;
    cancelled = cancelled || v.state == JobState::kCancelled;
  }
  return cancelled ? Verdict::kCancelled : Verdict::kPassed;
}

// Why a test waiting for a fixture's setup did not run.
std::string BlockedReason(const std::string& fixture, const std::string& setup, JobState state) {
  std::string how = state == JobState::kNotRun      ? "was not run"
                    : state == JobState::kCancelled ? "was cancelled"
                                                    : "failed";
  return "fixture '" + fixture + "': its setup test '" + setup + "' " + how;
}

// A result without its output and report, which can be megabytes.
protocol::JobResult WithoutBulk(const protocol::JobResult& result) {
  protocol::JobResult copy;
  copy.lease = result.lease;
  copy.job_id = result.job_id;
  copy.state = result.state;
  copy.duration_ms = result.duration_ms;
  copy.slot = result.slot;
  copy.stdout_dropped = result.stdout_dropped;
  copy.stderr_dropped = result.stderr_dropped;
  copy.report_error = result.report_error;
  return copy;
}

constexpr std::size_t kKeptPassingOutput = 64 * 1024;

std::string Tail(const std::string& text) {
  if (text.size() <= kKeptPassingOutput) return text;
  return "[testfarm: " + std::to_string(text.size() - kKeptPassingOutput) +
         " earlier bytes not kept]\n" + text.substr(text.size() - kKeptPassingOutput);
}

}  // namespace

Coordinator::Coordinator(zmq::context_t& context, const Clock& clock, std::vector<TestSpec> tests,
                         CoordinatorOptions options, Reporter& reporter)
    : socket_(context, zmq::socket_type::router),
      clock_(clock),
      tests_(std::move(tests)),
      options_(options),
      reporter_(reporter),
      scheduler_(clock, options.scheduler),
      running_(options.slow_timeout),
      batcher_(options.batcher),
      reported_(tests_.size(), false),
      started_(clock.Now()) {
  protocol::ConfigureSocket(socket_);
  // Sending to a worker that is gone must fail loudly, not vanish.
  socket_.set(zmq::sockopt::router_mandatory, 1);
  if (options_.keys) {
    std::vector<protocol::AllowedKey> allowed = options_.allowed_workers;
    allowed.push_back({options_.keys->public_key, "local"});
    zap_.emplace(context, allowed);
    protocol::MakeCurveServer(socket_, *options_.keys);
  }
  monitor_.emplace(context, socket_);
}

void Coordinator::CheckHandshakes() {
  if (zap_) zap_->HandleRequests();
  for (const protocol::HandshakeFailure& failure : monitor_->TakeFailures()) {
    // A refused peer retries: say each kind of failure once.
    if (handshake_failures_logged_.insert(failure.why).second) {
      spdlog::warn("coordinator: refused a connection on {}: {}", failure.endpoint, failure.why);
    }
  }
}

Result<std::string> Coordinator::Bind(const std::string& endpoint) {
  try {
    socket_.bind(endpoint);
    return socket_.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen on " + endpoint + ": " + e.what()};
  }
}

JobId Coordinator::AddJob(std::vector<std::size_t> tests, bool batch, unsigned attempt,
                          bool front) {
  const TestSpec& first = tests_[tests.front()];
  JobNeeds needs;
  needs.serial = first.run_serial;
  needs.processors = first.ordering.processors;
  needs.required_labels = first.required_labels;
  needs.locks = first.ordering.resource_locks;
  if (tests.size() == 1 && tests.front() < order_.group.size() && order_.group[tests.front()]) {
    needs.group = *order_.group[tests.front()];
  }
  JobId id = scheduler_.AddJob(first.timeout, std::move(needs), front);
  if (jobs_.size() <= id) jobs_.resize(id + 1);
  jobs_[id] = Job{std::move(tests), batch, attempt};
  return id;
}

void Coordinator::Prepare() {
  if (prepared_) return;
  prepared_ = true;
  if (!options_.ship_artifacts) return;
  for (TestSpec& test : tests_) {
    if (test.decided()) continue;
    if (auto set = artifacts_.For(test); !set) test.error = set.error().message;
  }
}

void Coordinator::PlanInitialJobs() {
  Result<TestOrder> order = OrderTests(tests_);
  if (order) {
    order_ = std::move(*order);
  } else {  // the command line refuses cycles before a run; never wait forever on one
    spdlog::error("coordinator: {}; running without DEPENDS and fixtures", order.error().message);
  }
  std::map<std::string, std::vector<std::size_t>> batches;  // suite -> its cases
  std::vector<std::string> batch_order;
  // Every test decided before the run is a job too, already ended, so others can wait for it.
  std::vector<std::optional<JobId>> job_of(tests_.size());
  auto ended = [&](std::size_t t, JobState state) {
    JobId id = scheduler_.AddEndedJob(state);
    if (jobs_.size() <= id) jobs_.resize(id + 1);
    jobs_[id] = Job{{t}, false, 1};
    job_of[t] = id;
  };
  for (std::size_t t = 0; t < tests_.size(); ++t) {
    const TestSpec& test = tests_[t];
    if (!test.error.empty()) {
      Report(t, JobState::kFailed, nullptr, test.error, test.error_output, Millis(0), {}, 1, false);
      ended(t, JobState::kFailed);
    } else if (!test.cannot_run.empty()) {
      // Reported as the test that could not start it is: ERROR, with the reason.
      protocol::JobResult never_started;
      never_started.state = ExitState::SpawnFailed(ENOENT, test.cannot_run);
      Report(t, JobState::kFailed, &never_started, {}, {}, Millis(0), {}, 1, false);
      ended(t, JobState::kFailed);
    } else if (!test.skip_reason.empty()) {
      Report(t, JobState::kSkipped, nullptr, test.skip_reason, {}, Millis(0), {}, 1, false);
      ended(t, JobState::kSkipped);
    } else if (options_.batch && test.gtest()) {
      if (batches.find(test.suite) == batches.end()) batch_order.push_back(test.suite);
      batches[test.suite].push_back(t);
    } else {
      job_of[t] = AddJob({t}, false, 1, false);
    }
  }
  for (std::size_t t = 0; t < order_.waits.size(); ++t) {
    if (!job_of[t] || tests_[t].decided()) continue;
    for (const TestOrder::Wait& wait : order_.waits[t]) {
      if (!job_of[wait.on]) continue;  // a batched GoogleTest case: never part of an order
      if (!wait.fixture.empty()) fixture_of_[{t, wait.on}] = wait.fixture;
      scheduler_.AddDependency(*job_of[t], *job_of[wait.on], !wait.fixture.empty());
    }
  }
  ReportBlocked();
  for (const std::string& suite : batch_order) {
    std::vector<std::size_t> name_bytes;
    for (std::size_t t : batches[suite]) name_bytes.push_back(tests_[t].gtest_case.size());
    std::size_t id = batcher_.AddSuite(batches[suite], std::move(name_bytes));
    for (std::size_t t : batches[suite]) batch_suite_of_[t] = id;
  }
}

void Coordinator::ReportBlocked() {
  for (const Scheduler::Blocked& blocked : scheduler_.TakeBlocked()) {
    std::size_t test = jobs_[blocked.job].tests.front();
    std::size_t setup = jobs_[blocked.because].tests.front();
    auto fixture = fixture_of_.find({test, setup});
    std::string reason =
        BlockedReason(fixture == fixture_of_.end() ? std::string("?") : fixture->second,
                      tests_[setup].name, scheduler_.state(blocked.because));
    Report(test, JobState::kNotRun, nullptr, std::move(reason), {}, Millis(0), {}, 1, false);
  }
}

void Coordinator::RefillBatches() {
  if (scheduler_.stopped()) return;
  while (scheduler_.WantedJobs() > 0) {
    auto batch = batcher_.Next(scheduler_.total_slots());
    if (!batch) return;
    bool shared = batch->size() > 1;  // a batch of one is simply a case run alone
    AddJob(std::move(*batch), shared, 1, false);
  }
}

bool Coordinator::Done() const {
  return scheduler_.Done() && (scheduler_.stopped() || batcher_.empty());
}

void Coordinator::SendTo(const std::string& identity, const protocol::Message& message) {
  try {
    if (auto it = workers_.find(identity); it != workers_.end())
      it->second.liveness.Sent(clock_.Now());
    if (!protocol::Send(socket_, message, &identity)) {
      spdlog::error("coordinator: could not send {} to worker (queue full)",
                    protocol::TypeName(message));
    }
  } catch (const zmq::error_t& e) {
    // EHOSTUNREACH: the worker is gone. Its jobs go back to the queue.
    auto it = workers_.find(identity);
    std::string name = it == workers_.end() ? "unknown" : it->second.name;
    spdlog::warn("coordinator: worker {} unreachable ({}); requeueing its jobs", name, e.what());
    ForgetWorker(identity, "the worker became unreachable", /*lost=*/true);
  }
}

void Coordinator::ForgetWorker(const std::string& identity, const std::string& why, bool lost) {
  // Its merged profile goes with it: say so rather than write a coverage.json that silently
  // lacks those tests. (Once its profile was asked for, CollectProfiles says it.)
  if (options_.coverage && raw_profiles_[identity] > 0 && profiles_.count(identity) == 0) {
    summary_.coverage.errors.push_back(
        worker_names_[identity] + " left or was lost (" + why + "): the coverage of " +
        std::to_string(raw_profiles_[identity]) + " profiles of its tests is missing");
  }
  // While running, its jobs go back to the queue; once stopped, they end as cancelled.
  Scheduler::Removal removal = scheduler_.RemoveWorker(identity, lost);
  for (JobId job : removal.cancelled) ReportJob(job, JobState::kCancelled, why);
  for (JobId job : removal.quarantined) {
    std::string names;
    for (const WorkerId& id : scheduler_.LostWorkers(job)) {
      auto it = worker_names_.find(id);
      names += (names.empty() ? "" : ", ") + (it == worker_names_.end() ? id : it->second);
    }
    ReportJob(job, JobState::kFailed,
              "worker lost: it was running when workers " + names + " were lost; not retried");
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
  if (Done()) {  // the run ended (or was stopped) before this worker arrived
    SendTo(identity, protocol::Bye{"run finished"});
    return;
  }
  workers_.emplace(identity, WorkerInfo{hello.worker_name, hello.slots,
                                        Liveness(options_.liveness, clock_.Now())});
  worker_names_[identity] = hello.worker_name;
  scheduler_.AddWorker(identity, hello.slots, hello.labels);
  SendTo(identity, protocol::Welcome{"run"});
  reporter_.OnWorkerJoined(hello.worker_name, hello.slots);
}

void Coordinator::Report(std::size_t test, JobState state, const protocol::JobResult* result,
                         std::string reason, std::string message, Millis duration,
                         const std::string& worker, unsigned attempt, bool batch) {
  if (reported_[test]) return;  // each test is reported exactly once
  reported_[test] = true;
  const TestSpec& spec = tests_[test];
  TestReport report;
  report.name = spec.name;
  report.suite = spec.suite;
  report.case_name = spec.gtest_case;
  report.state = state;
  if (result != nullptr) {
    report.result = WithoutBulk(*result);
    // A failure keeps all its output. A batch's output belongs to its failures; a passing test
    // keeps the tail, so a run of many chatty tests does not hold all of it in memory.
    if (IsFailure(state)) {
      report.result->stdout_text = result->stdout_text;
      report.result->stderr_text = result->stderr_text;
    } else if (!batch) {
      report.result->stdout_text = Tail(result->stdout_text);
      report.result->stderr_text = Tail(result->stderr_text);
    }
    report.slot = result->slot;
  }
  report.reason = std::move(reason);
  report.message = std::move(message);
  report.duration = duration;
  report.worker = worker;
  report.finished_at = std::chrono::duration_cast<Millis>(clock_.Now() - started_);
  Millis process = result ? Millis(static_cast<long long>(result->duration_ms)) : duration;
  report.started_at = std::max(Millis(0), report.finished_at - process);
  report.attempt = attempt;
  report.batch = batch;
  switch (state) {
    case JobState::kPassed:
      ++summary_.passed;
      break;
    case JobState::kSkipped:
      ++summary_.skipped_tests;
      break;
    case JobState::kCancelled:
      ++summary_.cancelled;
      break;
    case JobState::kNotRun:
      ++summary_.not_run;
      break;
    default:
      ++summary_.failed;
      break;
  }
  summary_.reports.push_back(std::move(report));
  reporter_.OnTestFinished(summary_.reports.back(), scheduler_.outstanding());
}

void Coordinator::ReportJob(JobId job, JobState state, const std::string& reason) {
  for (std::size_t t : jobs_[job].tests) {
    Report(t, state, nullptr, reason, {}, Millis(0), {}, jobs_[job].attempt, jobs_[job].batch);
  }
  if (IsFailure(state)) scheduler_.RecordFailures(static_cast<unsigned>(jobs_[job].tests.size()));
}

void Coordinator::OnResult(const std::string& identity, protocol::JobResult& result) {
  auto worker = workers_.find(identity);
  if (worker == workers_.end()) {
    spdlog::warn("coordinator: result from an unknown worker dropped (lease {})", result.lease);
    return;
  }
  auto job_id = scheduler_.JobOf(identity, result.lease);
  if (!job_id) {
    spdlog::info("coordinator: stale result for lease {} dropped", result.lease);
    return;
  }
  const Job job = jobs_[*job_id];
  JobVerdicts verdicts = Interpret(job.tests, job.batch, tests_, result);
  scheduler_.OnResult(identity, result.lease, VerdictOf(verdicts, result.state));
  summary_.coverage.raw_profiles += result.profiles;
  raw_profiles_[identity] += result.profiles;
  if (options_.coverage && result.profiles_empty > 0) {
    const TestSpec& first = tests_[job.tests.front()];
    std::string name = job.tests.size() == 1 ? first.name : first.suite + " (batch)";
    summary_.coverage.empty.push_back(name + " (" + result.state.Describe() + ")");
  }
  unsigned failures = 0;
  for (CaseVerdict& v : verdicts.decided) {
    if (auto suite = batch_suite_of_.find(v.test); suite != batch_suite_of_.end()) {
      batcher_.RecordDuration(suite->second, v.duration);
    }
    failures += IsFailure(v.state) ? 1 : 0;
    Report(v.test, v.state, &result, std::move(v.reason), std::move(v.message), v.duration,
           worker->second.name, job.attempt, job.batch);
  }
  // Cases the batch could not vouch for run again, alone, ahead of the rest.
  for (auto it = verdicts.rerun_alone.rbegin(); it != verdicts.rerun_alone.rend(); ++it) {
    AddJob({*it}, false, job.attempt + 1, true);
  }
  scheduler_.RecordFailures(failures);
}

void Coordinator::HandleMessage(const std::string& identity, protocol::Message& message) {
  if (auto it = workers_.find(identity); it != workers_.end())
    it->second.liveness.Heard(clock_.Now());
  if (auto* hello = std::get_if<protocol::Hello>(&message)) {
    OnHello(identity, *hello);
  } else if (auto* started = std::get_if<protocol::JobStarted>(&message)) {
    if (workers_.count(identity) != 0) scheduler_.OnStarted(identity, started->lease);
  } else if (auto* result = std::get_if<protocol::JobResult>(&message)) {
    OnResult(identity, *result);
  } else if (std::holds_alternative<protocol::Bye>(message)) {
    spdlog::info("coordinator: worker left");
    ForgetWorker(identity, "the worker left", /*lost=*/false);
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    spdlog::error("coordinator: worker reported an error: {}", error->text);
    // A worker that cannot answer the profile request (an older testfarm) will never send one.
    if (auto it = profiles_.find(identity); it != profiles_.end() && !it->second.done) {
      summary_.coverage.errors.push_back(it->second.name + ": " + error->text);
      it->second.done = true;
    }
  } else if (auto* fetch = std::get_if<protocol::Fetch>(&message)) {
    OnFetch(identity, *fetch);
  } else if (auto* profile = std::get_if<protocol::ProfileChunk>(&message)) {
    OnProfileChunk(identity, *profile);
  } else if (std::holds_alternative<protocol::Heartbeat>(message)) {
    // Heard() above is all a heartbeat is for.
  } else {
    spdlog::warn("coordinator: unexpected {} message from a worker; ignored",
                 protocol::TypeName(message));
    SendTo(identity, protocol::ErrorReply{std::string("unexpected message type ") +
                                          protocol::TypeName(message)});
  }
}

void Coordinator::OnFetch(const std::string& identity, const protocol::Fetch& fetch) {
  protocol::Chunk chunk;
  chunk.sha256 = fetch.sha256;
  chunk.offset = fetch.offset;
  const std::filesystem::path* path = artifacts_.PathOf(fetch.sha256);
  if (workers_.count(identity) == 0) {
    chunk.error = "not a worker of this run";
  } else if (path == nullptr) {
    chunk.error = "no file of this run has that content";
  } else {
    UniqueFd fd(::open(path->c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0) {
      chunk.error = "cannot read " + path->string() + ": " + ErrnoText(errno);
    } else {
      chunk.size = static_cast<uint64_t>(st.st_size);
      uint64_t available = chunk.size > fetch.offset ? chunk.size - fetch.offset : 0;
      chunk.data.resize(std::min<uint64_t>(available, fetch.length));
      ssize_t n =
          ::pread(fd.get(), chunk.data.data(), chunk.data.size(), static_cast<off_t>(fetch.offset));
      if (n < 0) {
        chunk.error = "cannot read " + path->string() + ": " + ErrnoText(errno);
        chunk.data.clear();
      } else {
        chunk.data.resize(static_cast<std::size_t>(n));
      }
    }
  }
  SendTo(identity, chunk);
}

void Coordinator::OnProfileChunk(const std::string& identity, protocol::ProfileChunk& chunk) {
  auto it = profiles_.find(identity);
  if (it == profiles_.end() || it->second.done) {
    spdlog::warn("coordinator: unasked-for coverage profile from worker {}; dropped",
                 worker_names_[identity]);
    return;
  }
  ProfileDownload& download = it->second;
  CoverageSummary& coverage = summary_.coverage;
  auto fail = [&](const std::string& why) {
    coverage.errors.push_back(download.name + ": " + why);
    download.done = true;
    download.data.clear();
  };
  if (chunk.offset != download.data.size() || chunk.size > (uint64_t{1} << 32) ||
      chunk.offset + chunk.data.size() > chunk.size) {
    return fail("profile chunks out of order or beyond the stated size");
  }
  download.data += chunk.data;
  if (!chunk.last) return;
  download.done = true;
  coverage.merged += chunk.merged;
  for (const std::string& bad : chunk.bad) coverage.bad.push_back(download.name + ": " + bad);
  if (!chunk.error.empty()) coverage.errors.push_back(download.name + ": " + chunk.error);
  if (download.data.size() != chunk.size) return fail("profile incomplete");
  if (download.data.empty()) return;
  std::ofstream out(download.path, std::ios::binary);
  out.write(download.data.data(), static_cast<std::streamsize>(download.data.size()));
  out.close();
  if (!out) return fail("cannot write " + download.path.string());
  coverage.profiles.push_back(download.path);
  download.data.clear();
}

void Coordinator::CollectProfiles(protocol::PollLoop& loop) {
  SteadyTime start = clock_.Now();
  std::vector<std::string> identities;
  for (const auto& [identity, info] : workers_) identities.push_back(identity);
  for (const std::string& identity : identities) {
    std::string file = "worker-" + std::to_string(profiles_.size()) + ".profdata";
    profiles_[identity] =
        ProfileDownload{workers_.at(identity).name, options_.profile_dir / file, {}, false};
    SendTo(identity, protocol::ProfileRequest{});
  }
  auto waiting = [&] {
    for (const auto& [identity, download] : profiles_) {
      if (!download.done && workers_.count(identity) != 0) return true;
    }
    return false;
  };
  // Bounded: a worker that dies or falls silent is forgotten by CheckWorkers, a signal stops
  // the wait, and so does kProfileWait.
  SteadyTime deadline = start + kProfileWait;
  profile_deadline_ = deadline;
  while (waiting() && clock_.Now() < deadline) {
    signalled_ = false;
    loop.Turn();
    if (signalled_) {
      spdlog::warn("coordinator: interrupted while collecting coverage profiles");
      summary_.interrupted = true;
      break;
    }
    CheckWorkers();
  }
  profile_deadline_.reset();
  for (const auto& [identity, download] : profiles_) {
    if (!download.done) {
      summary_.coverage.errors.push_back(
          download.name +
          ": its profile never came (the worker was lost, or did not answer within " +
          FormatDuration(kProfileWait) + ")");
    }
  }
  summary_.coverage.collect = std::chrono::duration_cast<Millis>(clock_.Now() - start);
}

void Coordinator::HandleIncoming() {
  while (auto incoming = protocol::Receive(socket_, /*router=*/true)) {
    if (auto* error = std::get_if<protocol::DecodeError>(&incoming->message)) {
      if (error->code == protocol::DecodeError::Code::kWrongVersion) {
        // Said once per connection: the worker retries until one of the two is upgraded.
        if (version_mismatches_logged_.insert(incoming->identity).second) {
          spdlog::error(
              "coordinator: a worker speaks another protocol version ({}); it cannot "
              "join until testfarm on both sides is the same version",
              error->message);
        }
        SendTo(incoming->identity,
               protocol::ErrorReply{"this coordinator speaks testfarm protocol version " +
                                    std::to_string(protocol::kVersion)});
        continue;
      }
      auto name = worker_names_.find(incoming->identity);
      std::string who =
          name == worker_names_.end() ? "a peer that has not joined" : "worker " + name->second;
      if (auto line = bad_frames_.Note(
              incoming->identity, who,
              std::string(protocol::CodeName(error->code)) + ": " + error->message, clock_.Now())) {
        spdlog::warn("coordinator: {}", *line);
      }
      SendTo(incoming->identity, protocol::ErrorReply{error->message});
      continue;
    }
    HandleMessage(incoming->identity, std::get<protocol::Message>(incoming->message));
  }
}

void Coordinator::PerformActions() {
  for (Action& action : scheduler_.TakeActions()) {
    if (auto* assign = std::get_if<AssignAction>(&action)) {
      const Job& job = jobs_[assign->job];
      const TestSpec& first = tests_[job.tests.front()];
      WarnIfClamped(job.tests.front(), assign->worker);
      protocol::JobAssign message;
      message.lease = assign->lease;
      message.job_id = assign->job;
      message.name = job.tests.size() == 1 ? first.name : first.suite + " (batch)";
      message.argv = first.command;
      if (first.gtest()) {
        std::vector<std::string> cases;
        for (std::size_t t : job.tests) cases.push_back(tests_[t].gtest_case);
        message.argv.push_back("--gtest_filter=" + GtestFilterFor(cases));
        message.report_env = "GTEST_OUTPUT=json:";
      }
      message.env = first.env;
      message.cwd = first.cwd;
      message.timeout_ms = static_cast<uint64_t>(first.timeout.count());
      message.kill_grace_ms = static_cast<uint64_t>(options_.scheduler.kill_grace.count());
      message.coverage = options_.coverage;
      if (options_.ship_artifacts) {
        auto set = artifacts_.For(first);  // computed when the run was planned
        if (set && !(*set)->files.empty()) {
          message.artifact_root = (*set)->root;
          message.artifacts = (*set)->files;
          message.library_dirs = (*set)->library_dirs;
        }
      }
      SendTo(assign->worker, message);
    } else {
      const auto& cancel = std::get<CancelAction>(action);
      SendTo(cancel.worker, protocol::Cancel{cancel.lease});
    }
  }
}

void Coordinator::WarnIfClamped(std::size_t test, const std::string& identity) {
  auto worker = workers_.find(identity);
  unsigned wanted = tests_[test].ordering.processors;
  if (worker == workers_.end() || wanted <= worker->second.slots) return;
  if (!clamp_warned_.insert(test).second) return;
  spdlog::warn(
      "{} asks for PROCESSORS {}, more than the {} slot{} of worker {}: it runs there "
      "holding all of them",
      tests_[test].name, wanted, worker->second.slots, worker->second.slots == 1 ? "" : "s",
      worker->second.name);
}

void Coordinator::OnSignal(int signal_fd) {
  signalfd_siginfo info{};
  if (::read(signal_fd, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return;
  SteadyTime now = clock_.Now();
  if (!first_signal_at_) {
    first_signal_at_ = now;
    summary_.interrupted = true;
    // The console's summary says so ("Stopped early: interrupted").
    spdlog::info("coordinator: interrupted; stopping running tests");
    scheduler_.Stop("interrupted");
  } else if (now - *first_signal_at_ >= kSecondSignalAfter) {
    // A second signal: stop waiting for the cancelled tests. (One sent to the process and then
    // to its group, as `timeout` does, arrives twice at once; that counts as one.)
    give_up_at_ = now;
  }
}

void Coordinator::AbandonOutstanding(const std::string& why) {
  for (JobId job : scheduler_.AbandonOutstanding()) ReportJob(job, JobState::kCancelled, why);
}

void Coordinator::CheckWorkers() {
  SteadyTime now = clock_.Now();
  // This loop wakes at least once per interval. If it did not (the process was suspended or
  // starved of CPU), the workers' silence is ours, not theirs: start counting again.
  if (last_check_ && now - *last_check_ > 2 * options_.liveness.interval && !workers_.empty()) {
    spdlog::warn("coordinator: this process did not run for {}; not counting it against workers",
                 FormatDuration(std::chrono::duration_cast<Millis>(now - *last_check_)));
    for (auto& [identity, info] : workers_) info.liveness.Heard(now);
  }
  last_check_ = now;
  // Collected first: sending may find a worker gone and forget it, which edits workers_.
  std::vector<std::string> dead;
  std::vector<std::string> due;
  for (auto& [identity, info] : workers_) {
    if (info.liveness.Dead(now)) {
      dead.push_back(identity);
    } else if (info.liveness.ShouldSendHeartbeat(now)) {
      due.push_back(identity);
    }
  }
  for (const std::string& identity : due) SendTo(identity, protocol::Heartbeat{});
  for (const std::string& identity : dead) {
    spdlog::warn("coordinator: worker {} silent for {} heartbeats; requeueing its jobs",
                 worker_names_[identity], options_.liveness.liveness);
    if (workers_.count(identity) != 0) ForgetWorker(identity, "its worker was lost", /*lost=*/true);
  }
}

void Coordinator::StopIfNoWorkerCanCome() {
  // Without --listen nobody else can come: a run whose every worker is gone stops (else it
  // would wait on a socket no one will ever write to).
  if (dispatch_open_ && workers_.empty() && options_.wait_workers.count() == 0 &&
      !scheduler_.stopped()) {
    scheduler_.Stop("every worker was lost");
  }
}

bool Coordinator::DispatchOpen() {
  if (dispatch_open_) return true;
  bool waited = clock_.Now() >= started_ + options_.wait_workers;
  if (workers_.size() >= options_.min_workers || (waited && !workers_.empty())) {
    dispatch_open_ = true;
    if (workers_.size() < options_.min_workers) {
      spdlog::warn(
          "only {} of the {} workers asked for (--min-workers) joined within {}; "
          "starting with {}",
          workers_.size(), options_.min_workers, FormatDuration(options_.wait_workers),
          workers_.size() == 1 ? "it" : "them");
    }
  } else if (waited && options_.wait_workers.count() > 0) {
    scheduler_.Stop("no worker joined within " + FormatDuration(options_.wait_workers));
  }
  return dispatch_open_;
}

void Coordinator::FailUnplaceable() {
  if (clock_.Now() < started_ + options_.wait_workers) return;
  for (JobId job : scheduler_.TakeUnplaceable()) {
    std::string wanted;
    for (const auto& [key, value] : tests_[jobs_[job].tests.front()].required_labels) {
      wanted += (wanted.empty() ? "" : ", ") + key + "=" + value;
    }
    ReportJob(job, JobState::kFailed, "no connected worker has the labels it requires: " + wanted);
  }
}

std::optional<SteadyTime> Coordinator::NextDeadline() const {
  std::optional<SteadyTime> next;
  auto consider = [&](std::optional<SteadyTime> at) {
    if (at && (!next || *at < *next)) next = at;
  };
  for (const auto& [identity, info] : workers_) consider(info.liveness.NextDeadline());
  if (profile_deadline_) {  // collecting profiles: the run's own deadlines are over
    consider(profile_deadline_);
    return next;
  }
  consider(scheduler_.NextDeadline());
  consider(give_up_at_);
  if (!dispatch_open_ && options_.wait_workers.count() > 0) {
    consider(started_ + options_.wait_workers);
  }
  consider(running_.NextSlowDeadline());
  return next;
}

void Coordinator::Watch(protocol::PollLoop* loop, int signal_fd) {
  auto readable = [] { return static_cast<short>(ZMQ_POLLIN); };
  loop->WatchSocket(socket_.handle(), readable, [this](short) { HandleIncoming(); });
  loop->WatchSocket(monitor_->handle(), readable, [this](short) { CheckHandshakes(); });
  if (zap_) loop->WatchSocket(zap_->handle(), readable, [this](short) { CheckHandshakes(); });
  loop->WatchFd(signal_fd, [this] { signalled_ = true; });
  loop->WakeBy([this] { return NextDeadline(); });
}

void Coordinator::WatchRunning() {
  SteadyTime now = clock_.Now();
  auto name_of = [&](const Scheduler::RunningLease& lease) {
    const Job& job = jobs_[lease.job];
    const TestSpec& first = tests_[job.tests.front()];
    return job.tests.size() == 1 ? first.name : first.suite + " (batch)";
  };
  RunningTests::Changes changes = running_.Update(scheduler_.Running(), now);
  // Leases the run is already cancelling may still be marked running: not worth a START line.
  if (!scheduler_.stopped()) {
    for (const auto& lease : changes.started) {
      auto worker = worker_names_.find(lease.worker);
      reporter_.OnTestStarted(name_of(lease), worker == worker_names_.end() ? "" : worker->second);
    }
  }
  for (const auto& lease : changes.slow) {
    reporter_.OnTestSlow(name_of(lease), std::chrono::duration_cast<Millis>(now - lease.since));
  }
  auto longest = running_.Longest();
  reporter_.OnRunning(
      running_.count(), longest ? name_of(*longest) : std::string(),
      longest ? std::chrono::duration_cast<Millis>(now - longest->since) : Millis(0));
}

void Coordinator::Loop(protocol::PollLoop& loop, int signal_fd) {
  while (!Done()) {
    ReportBlocked();
    if (DispatchOpen()) {
      FailUnplaceable();
      if (options_.batch) RefillBatches();
      scheduler_.Dispatch();
    }
    WatchRunning();    // before the sends: a START line comes before the test's own output
    PerformActions();  // a send may find the last worker gone
    StopIfNoWorkerCanCome();
    if (Done()) break;
    signalled_ = false;
    loop.Turn();
    if (signalled_) OnSignal(signal_fd);
    CheckWorkers();
    StopIfNoWorkerCanCome();
    for (JobId job : scheduler_.OnTimers()) {
      ReportJob(job, JobState::kExpired, "no result from the worker within the test's timeout");
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
  Prepare();
  started_ = clock_.Now();
  reporter_.OnRunStart(tests_.size());
  PlanInitialJobs();
  protocol::PollLoop loop(clock_);
  Watch(&loop, signal_fd);
  try {
    Loop(loop, signal_fd);
    PerformActions();
    if (options_.coverage && !summary_.interrupted) CollectProfiles(loop);
  } catch (const zmq::error_t& e) {
    spdlog::error("coordinator: socket failure: {}", e.what());
    scheduler_.Stop(std::string("socket failure: ") + e.what());
    AbandonOutstanding("the coordinator's socket failed");
  }
  ReportBlocked();
  for (const std::string& line : bad_frames_.Flush()) spdlog::warn("coordinator: {}", line);
  // Every selected test is reported exactly once, in every report: those the run never started
  // (it stopped, or no worker came) are listed as not run, with why.
  batcher_.Clear();
  std::string not_run_reason = scheduler_.stop_reason().empty()
                                   ? std::string("the run ended before it started")
                                   : "the run stopped: " + scheduler_.stop_reason();
  for (std::size_t t = 0; t < tests_.size(); ++t) {
    if (!reported_[t]) {
      Report(t, JobState::kNotRun, nullptr, not_run_reason, {}, Millis(0), {}, 1, false);
    }
  }
  std::vector<std::string> identities;
  for (const auto& [identity, info] : workers_) identities.push_back(identity);
  for (const std::string& identity : identities) SendTo(identity, protocol::Bye{"run finished"});
  summary_.stop_reason = scheduler_.stop_reason();
  summary_.wall = std::chrono::duration_cast<Millis>(clock_.Now() - started_);
  reporter_.OnRunEnd(summary_);
  return summary_;
}

}  // namespace testfarm::coordinator
