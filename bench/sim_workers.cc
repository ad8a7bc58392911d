// Simulated workers (a benchmark program, not a product command): K workers x S slots from one
// process, speaking the real protocol over TCP to a coordinator (`testfarm run --listen`) or a
// farm (`testfarm serve`). A job "runs" for --job-ms without spawning anything; its result is a
// clean exit with a few bytes of output.
//
// What it measures, on the workers' side of the wire:
//   - jobs finished, and the window from the first job's arrival to the last result sent;
//   - for every job started, how long its slot had stood free before it (the time from a slot
//     freeing to its next assignment; 0 when the job was already waiting, sent ahead);
// and it prints them as one line of `key=value` pairs when every worker was told bye (a run's
// end) or on SIGTERM/SIGINT (a farm's workers are never told).
//
//   sim_workers --connect ENDPOINT [--workers K] [--slots S] [--job-ms D]
//               [--server-key FARM.pub --key WORKER.key]
//
// One thread and epoll over the sockets' ZMQ_FD, so a thousand connections cost the simulator
// little: only sockets with something to read are looked at.
#include <signal.h>
#include <sys/epoll.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <queue>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "protocol/curve.h"
#include "protocol/messages.h"
#include "protocol/wire.h"

namespace {

using namespace testfarm;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

volatile sig_atomic_t g_stop = 0;
void OnSignal(int) {
  g_stop = 1;
}

struct Options {
  std::string endpoint;
  unsigned workers = 10;
  unsigned slots = 16;
  unsigned job_ms = 0;
  std::string server_key;  // the farm's .pub: CURVE on
  std::string key;         // the workers' .key (one pair serves them all)
  std::string name = "sim";
};

struct PendingJob {
  uint64_t lease = 0;
  uint64_t job_id = 0;
  std::string report;  // a GoogleTest job's JSON report: every case it names passed
};

// What gtest writes (GTEST_OUTPUT=json) when the cases of `--gtest_filter=A.x:B.y` all pass.
std::string GtestReport(const protocol::JobAssign& job) {
  std::string filter;
  for (const std::string& arg : job.argv) {
    if (arg.rfind("--gtest_filter=", 0) == 0) filter = arg.substr(15);
  }
  std::string cases;
  for (std::size_t pos = 0; pos <= filter.size();) {
    std::size_t end = filter.find(':', pos);
    if (end == std::string::npos) end = filter.size();
    std::string name = filter.substr(pos, end - pos);
    pos = end + 1;
    std::size_t dot = name.find('.');
    if (dot == std::string::npos) continue;
    if (!cases.empty()) cases += ',';
    cases += R"({"name":")" + name.substr(0, dot) + R"(","testsuite":[{"name":")" +
             name.substr(dot + 1) + R"(","status":"RUN","result":"COMPLETED","time":"0s"}]})";
  }
  return R"({"tests":1,"testsuites":[)" + cases + "]}";
}

struct Worker {
  std::unique_ptr<zmq::socket_t> socket;
  std::deque<TimePoint> free_since;  // one entry per free slot: when it became free
  std::deque<PendingJob> backlog;    // jobs sent ahead, waiting for a slot
  std::vector<protocol::Message> outbox;
  bool said_bye = false;
  bool ready = false;  // welcomed
};

struct Finish {
  TimePoint at;
  unsigned worker;
  PendingJob job;
  bool operator>(const Finish& other) const { return at > other.at; }
};

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sim_workers: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--connect") {
      options->endpoint = value();
    } else if (arg == "--workers") {
      options->workers = static_cast<unsigned>(std::stoul(value()));
    } else if (arg == "--slots") {
      options->slots = static_cast<unsigned>(std::stoul(value()));
    } else if (arg == "--job-ms") {
      options->job_ms = static_cast<unsigned>(std::stoul(value()));
    } else if (arg == "--server-key") {
      options->server_key = value();
    } else if (arg == "--key") {
      options->key = value();
    } else if (arg == "--name") {
      options->name = value();
    } else {
      std::fprintf(stderr, "sim_workers: unknown argument '%s'\n", arg.c_str());
      return false;
    }
  }
  if (options->endpoint.empty() || options->workers == 0 || options->slots == 0) {
    std::fprintf(stderr, "sim_workers: --connect ENDPOINT is required; workers and slots >= 1\n");
    return false;
  }
  if (options->server_key.empty() != options->key.empty()) {
    std::fprintf(stderr, "sim_workers: --server-key and --key go together\n");
    return false;
  }
  return true;
}

double Percentile(std::vector<double>* values, double p) {
  if (values->empty()) return 0;
  std::size_t k = static_cast<std::size_t>(p * static_cast<double>(values->size() - 1));
  std::nth_element(values->begin(), values->begin() + static_cast<std::ptrdiff_t>(k),
                   values->end());
  return (*values)[k];
}

class Simulator {
 public:
  explicit Simulator(Options options) : options_(std::move(options)), context_(2) {}

  int Run() {
    std::optional<protocol::KeyPair> keys;
    std::string server_public;
    if (!options_.server_key.empty()) {
      auto secret = protocol::ReadSecretKeyFile(options_.key);
      auto server = protocol::ReadPublicKeyFile(options_.server_key);
      if (!secret || !server) {
        std::fprintf(stderr, "sim_workers: %s\n",
                     (!secret ? secret.error() : server.error()).message.c_str());
        return 2;
      }
      keys = *secret;
      server_public = *server;
    }
    epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
    workers_.resize(options_.workers);
    for (unsigned i = 0; i < options_.workers; ++i) {
      Worker& worker = workers_[i];
      worker.socket = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
      protocol::ConfigureSocket(*worker.socket);
      worker.socket->set(zmq::sockopt::sndhwm, 0);
      worker.socket->set(zmq::sockopt::rcvhwm, 0);
      if (keys) protocol::MakeCurveClient(*worker.socket, *keys, server_public);
      worker.socket->connect(options_.endpoint);
      for (unsigned s = 0; s < options_.slots; ++s) worker.free_since.push_back(Clock::now());
      epoll_event event{};
      event.events = EPOLLIN | EPOLLET;
      event.data.u32 = i;
      int fd = worker.socket->get(zmq::sockopt::fd);
      ::epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event);
      protocol::Hello hello;
      hello.worker_name = options_.name + std::to_string(i + 1);
      hello.slots = options_.slots;
      hello.os = "linux";
      hello.arch = "x86_64";
      Send(i, hello);
      ready_.push_back(i);  // its fd may have signalled before we listened
    }
    TimePoint next_beat = Clock::now() + std::chrono::milliseconds(500);
    std::vector<epoll_event> events(256);
    while (!g_stop && byes_ < options_.workers) {
      DrainReady();
      FinishDue();
      TimePoint now = Clock::now();
      if (now >= next_beat) {
        for (unsigned i = 0; i < options_.workers; ++i) {
          if (!workers_[i].said_bye) Send(i, protocol::Heartbeat{});
        }
        next_beat = now + std::chrono::milliseconds(500);
      }
      TimePoint wake = next_beat;
      if (!finishing_.empty()) wake = std::min(wake, finishing_.top().at);
      if (!ready_.empty()) continue;
      auto wait = std::chrono::duration_cast<std::chrono::microseconds>(wake - Clock::now());
      int timeout_ms = wait.count() <= 0 ? 0 : static_cast<int>((wait.count() + 999) / 1000);
      int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
      for (int k = 0; k < n; ++k) ready_.push_back(events[static_cast<std::size_t>(k)].data.u32);
    }
    Report();
    for (Worker& worker : workers_) {
      if (!worker.said_bye) {
        protocol::Send(*worker.socket, protocol::Bye{"the simulator is done"});
      }
      worker.socket->set(zmq::sockopt::linger, 200);
    }
    return 0;
  }

 private:
  void Send(unsigned i, const protocol::Message& message) {
    Worker& worker = workers_[i];
    if (!worker.outbox.empty() || !protocol::Send(*worker.socket, message)) {
      worker.outbox.push_back(message);  // the connection is not up yet
      ready_.push_back(i);
      return;
    }
    // A send may take in the socket's pending work, consuming the edge its fd would have
    // signalled for a message that arrived meanwhile: look again.
    if ((worker.socket->get(zmq::sockopt::events) & ZMQ_POLLIN) != 0) ready_.push_back(i);
  }

  // Reads every socket that signalled until it has nothing more, flushing what waits to go.
  void DrainReady() {
    while (!ready_.empty()) {
      unsigned i = ready_.back();
      ready_.pop_back();
      Worker& worker = workers_[i];
      std::size_t sent = 0;
      while (sent < worker.outbox.size() && protocol::Send(*worker.socket, worker.outbox[sent])) {
        ++sent;
      }
      worker.outbox.erase(worker.outbox.begin(),
                          worker.outbox.begin() + static_cast<std::ptrdiff_t>(sent));
      while (auto in = protocol::Receive(*worker.socket, false)) {
        auto* message = std::get_if<protocol::Message>(&in->message);
        if (message == nullptr) {
          std::fprintf(stderr, "sim_workers: a bad frame: %s\n",
                       std::get<protocol::DecodeError>(in->message).message.c_str());
          continue;
        }
        Handle(i, *message);
      }
      // Edge-triggered: the fd only signals anew once ZMQ_EVENTS was read after a change.
      const int events = worker.socket->get(zmq::sockopt::events);
      if (!worker.outbox.empty() || (events & ZMQ_POLLIN) != 0) retry_.push_back(i);
    }
    ready_.swap(retry_);
    if (!ready_.empty()) FinishDue();  // don't spin on a socket that cannot send yet
  }

  void Handle(unsigned i, protocol::Message& message) {
    Worker& worker = workers_[i];
    if (auto* job = std::get_if<protocol::JobAssign>(&message)) {
      TimePoint now = Clock::now();
      if (!first_job_) first_job_ = now;
      ++assigned_;
      PendingJob pending{job->lease, job->job_id, {}};
      if (!job->report_env.empty()) pending.report = GtestReport(*job);
      if (worker.free_since.empty()) {
        worker.backlog.push_back(pending);
        return;
      }
      gaps_us_.push_back(
          std::chrono::duration<double, std::micro>(now - worker.free_since.front()).count());
      worker.free_since.pop_front();
      Start(i, pending, now);
    } else if (auto* cancel = std::get_if<protocol::Cancel>(&message)) {
      // A job sent ahead and not started: report it cancelled. A running one finishes.
      auto& backlog = worker.backlog;
      auto it = std::find_if(backlog.begin(), backlog.end(),
                             [&](const PendingJob& p) { return p.lease == cancel->lease; });
      if (it != backlog.end()) {
        protocol::JobResult result;
        result.lease = it->lease;
        result.job_id = it->job_id;
        result.state = ExitState::Cancelled("never started");
        backlog.erase(it);
        Send(i, result);
      }
    } else if (std::holds_alternative<protocol::Bye>(message)) {
      if (!worker.said_bye) {
        worker.said_bye = true;
        ++byes_;
      }
    } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
      std::fprintf(stderr, "sim_workers: the coordinator said: %s\n", error->text.c_str());
    }
  }

  void Start(unsigned i, PendingJob job, TimePoint now) {
    Send(i, protocol::JobStarted{job.lease});
    if (options_.job_ms == 0) {
      Complete(i, std::move(job), now);
      return;
    }
    finishing_.push(Finish{now + std::chrono::milliseconds(options_.job_ms), i, std::move(job)});
  }

  void Complete(unsigned i, PendingJob job, TimePoint now) {
    protocol::JobResult result;
    result.lease = job.lease;
    result.job_id = job.job_id;
    result.state = ExitState::Exited(0);
    result.duration_ms = options_.job_ms;
    result.stdout_text = "ok\n";
    result.peak_rss_kb = 1024;
    result.report = std::move(job.report);
    Send(i, result);
    ++finished_;
    last_result_ = now;
    Worker& worker = workers_[i];
    if (!worker.backlog.empty()) {
      PendingJob next = worker.backlog.front();
      worker.backlog.pop_front();
      gaps_us_.push_back(0);
      Start(i, std::move(next), now);
    } else {
      worker.free_since.push_back(now);
    }
  }

  void FinishDue() {
    TimePoint now = Clock::now();
    while (!finishing_.empty() && finishing_.top().at <= now) {
      Finish due = finishing_.top();
      finishing_.pop();
      Complete(due.worker, std::move(due.job), now);
    }
  }

  void Report() {
    double window_s =
        first_job_ ? std::chrono::duration<double>(last_result_ - *first_job_).count() : 0.0;
    double rate = window_s > 0 ? static_cast<double>(finished_) / window_s : 0.0;
    std::vector<double> gaps = gaps_us_;
    double p50 = Percentile(&gaps, 0.50);
    double p99 = Percentile(&gaps, 0.99);
    double max = gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end());
    std::printf(
        "workers=%u slots=%u job_ms=%u assigned=%llu finished=%llu window_s=%.3f "
        "jobs_per_s=%.0f gap_p50_ms=%.3f gap_p99_ms=%.3f gap_max_ms=%.3f\n",
        options_.workers, options_.slots, options_.job_ms,
        static_cast<unsigned long long>(assigned_), static_cast<unsigned long long>(finished_),
        window_s, rate, p50 / 1000, p99 / 1000, max / 1000);
    std::fflush(stdout);
  }

  Options options_;
  zmq::context_t context_;
  int epoll_ = -1;
  std::vector<Worker> workers_;
  std::vector<unsigned> ready_;
  std::vector<unsigned> retry_;
  std::priority_queue<Finish, std::vector<Finish>, std::greater<>> finishing_;
  unsigned byes_ = 0;
  uint64_t assigned_ = 0;
  uint64_t finished_ = 0;
  std::optional<TimePoint> first_job_;
  TimePoint last_result_{};
  std::vector<double> gaps_us_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, &options)) return 2;
  struct sigaction action {};
  action.sa_handler = OnSignal;
  ::sigaction(SIGTERM, &action, nullptr);
  ::sigaction(SIGINT, &action, nullptr);
  try {
    return Simulator(std::move(options)).Run();
  } catch (const zmq::error_t& e) {
    std::fprintf(stderr, "sim_workers: %s\n", e.what());
    return 1;
  }
}
