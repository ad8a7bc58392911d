#include "coordinator/coordinator.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include "coordinator/history_store.h"
#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

Coordinator::Coordinator(zmq::context_t& context, const Clock& clock, std::vector<TestSpec> tests,
                         CoordinatorOptions options, Reporter& reporter)
    : link_(context, clock, /*router=*/true, "coordinator", "the worker"),
      clock_(clock),
      tests_(std::move(tests)),
      options_(std::move(options)),
      reporter_(reporter) {
  if (options_.keys) {
    std::vector<protocol::AllowedKey> allowed = options_.allowed_workers;
    allowed.push_back({options_.keys->public_key, "local"});
    zap_.emplace(context, allowed);
    protocol::MakeCurveServer(link_.socket(), *options_.keys);
  }
}

void Coordinator::CheckHandshakes() {
  if (zap_) zap_->HandleRequests();
  for (const auto& handshake : link_.TakeHandshakeFailures()) {
    // A refused peer retries: say each kind of failure once.
    if (handshake.new_kind) {
      spdlog::warn("coordinator: refused a connection on {}: {}", handshake.failure.endpoint,
                   handshake.failure.why);
    }
  }
}

Result<std::string> Coordinator::Bind(const std::string& endpoint) {
  try {
    link_.socket().bind(endpoint);
    return link_.socket().get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen on " + endpoint + ": " + e.what()};
  }
}

void Coordinator::Prepare() {
  if (prepared_) return;
  prepared_ = true;
  if (options_.ship_artifacts) shipped_ = ShipTests(artifacts_, tests_);
}

void Coordinator::Flush() {
  bool more = true;
  while (more) {
    for (Outgoing& out : farm_->TakeOutbox()) link_.Send(out.peer, std::move(out.message));
    for (const std::string& gone : farm_->TakeGone()) link_.Forget(gone);
    // A worker found gone: its jobs go back to the queue (and the core may want more sent).
    // Messages a full queue held back are retried here too.
    for (const std::string& gone : link_.Flush().gone) farm_->OnUnreachable(gone);
    more = farm_->HasOutgoing();
  }
}

void Coordinator::ShowFleet(bool now_anyway) {
  DashboardSink* dashboard = options_.dashboard;
  if (dashboard == nullptr) return;
  SteadyTime now = clock_.Now();
  if (!dashboard->FleetDue(now) && !now_anyway) return;
  FleetView view;
  view.at_ms = UnixMillisNow();
  const RunView& run = options_.dashboard_run;
  view.runs.push_back(ViewOfRun(*farm_, run_id_, run.id, run.label, run.client));
  view.workers = WorkersOf(*farm_, {{run_id_, run.id}}, now, view.at_ms);
  dashboard->Fleet(std::move(view));
}

void Coordinator::Serve(const std::string& peer, const protocol::Fetch& fetch) {
  protocol::Chunk chunk;
  if (!farm_->IsWorker(peer)) {
    chunk.error = "not a worker of this run";
  } else {
    chunk = served_.Read(fetch, [&]() -> Result<std::filesystem::path> {
      const std::filesystem::path* path = artifacts_.PathOf(fetch.sha256);
      if (path == nullptr) return Error{"no file of this run has that content"};
      return *path;
    });
  }
  chunk.sha256 = fetch.sha256;
  chunk.offset = fetch.offset;
  link_.Send(peer, std::move(chunk));
}

void Coordinator::Watch(protocol::PollLoop* loop, int signal_fd) {
  auto readable = [] { return static_cast<short>(ZMQ_POLLIN); };
  loop->WatchSocket(
      link_.handle(), [this] { return link_.events(); },
      [this](short) {
        link_.Receive([this](const std::string& peer) { return farm_->Describe(peer); },
                      [this](const std::string& peer, protocol::Message& message) {
                        farm_->OnMessage(peer, message);
                        if (auto* fetch = std::get_if<protocol::Fetch>(&message)) {
                          Serve(peer, *fetch);
                        }
                        Flush();
                      });
        Flush();  // the answers to bad frames
      });
  loop->WatchSocket(link_.monitor_handle(), readable, [this](short) { CheckHandshakes(); });
  if (zap_) loop->WatchSocket(zap_->handle(), readable, [this](short) { CheckHandshakes(); });
  loop->WatchFd(signal_fd, [this, signal_fd] {
    signalfd_siginfo info{};
    if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
      core_->OnInterrupt();
    }
  });
  loop->WakeBy([this] { return farm_->NextDeadline(); });
  loop->WakeBy([this] { return link_.NextDeadline(); });
  if (options_.dashboard != nullptr) {
    loop->WakeBy([this] { return options_.dashboard->NextFleetAt(); });
  }
}

RunSummary Coordinator::Run(int signal_fd) {
  Prepare();
  std::filesystem::path profile_dir = options_.profile_dir;
  ProfileSink keep_profile = [profile_dir](std::size_t index, uint64_t offset, uint64_t size,
                                           std::string_view data) -> Result<std::filesystem::path> {
    std::filesystem::path path = profile_dir / ("worker-" + std::to_string(index) + ".profdata");
    // Written a piece at a time as the pieces come.
    std::ofstream out(path, std::ios::binary | (offset == 0 ? std::ios::trunc : std::ios::app));
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    out.close();
    if (!out) return Error{"cannot write " + path.string()};
    return offset + data.size() == size ? path : std::filesystem::path();
  };
  farm_.emplace(clock_, FarmOptions{.liveness = options_.liveness, .single_run = true});
  run_id_ = farm_->NewRunId();
  RunOptions run_options = options_;
  run_options.scheduler.first_lease = FarmCore::FirstLease(run_id_);
  run_options.run_id = run_id_;
  auto core = std::make_unique<RunCore>(clock_, std::move(tests_), run_options, reporter_,
                                        std::move(shipped_), std::move(keep_profile));
  core_ = core.get();
  protocol::PollLoop loop(clock_);
  Watch(&loop, signal_fd);
  try {
    core_->Start();
    farm_->AddRun(run_id_, std::move(core));
    Flush();
    while (core_->phase() != RunPhase::kDone) {
      loop.Turn();
      farm_->Tick();
      Flush();
      ShowFleet(false);
    }
    ShowFleet(true);
  } catch (const zmq::error_t& e) {
    spdlog::error("coordinator: socket failure: {}", e.what());
    core_->Abort(std::string("socket failure: ") + e.what());
  }
  for (const std::string& line : link_.TakeUntoldBadFrames()) {
    spdlog::warn("coordinator: {}", line);
  }
  RunSummary summary = farm_->FinishRun(run_id_);
  core_ = nullptr;
  try {
    Flush();
  } catch (const zmq::error_t& e) {
    spdlog::warn("coordinator: could not say goodbye to the workers: {}", e.what());
  }
  return summary;
}

}  // namespace testfarm::coordinator
