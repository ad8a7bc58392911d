#include "worker/worker_node.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "protocol/poll_loop.h"
#include "protocol/wire.h"
#include "shared/duration.h"
#include "shared/errno_text.h"
#include "shared/file_io.h"
#include "worker/connect_probe.h"

namespace testfarm::worker {

namespace {

PoolOptions PoolOptionsFor(const WorkerNodeOptions& options) {
  PoolOptions pool;
  pool.slots = std::max(1u, options.slots);
  pool.worker_name = options.name;
  pool.scratch_root = options.scratch_root;
  pool.leak_grace = options.leak_grace;
  return pool;
}

std::filesystem::path ScratchRoot(const WorkerNodeOptions& options) {
  return options.scratch_root.empty() ? SystemTempDir() : options.scratch_root;
}

protocol::JobResult ResultOf(FinishedJob& finished, uint64_t job_id) {
  protocol::JobResult result;
  result.lease = finished.token;
  result.job_id = job_id;
  result.state = finished.state;
  result.duration_ms = static_cast<uint64_t>(finished.duration.count());
  result.slot = finished.slot;
  result.stdout_text = std::move(finished.out.text);
  result.stderr_text = std::move(finished.err.text);
  result.stdout_dropped = finished.out.dropped;
  result.stderr_dropped = finished.err.dropped;
  result.peak_rss_kb = finished.usage.peak_rss_kb;
  result.cpu_ms = finished.usage.cpu_ms;
  result.report = std::move(finished.report);
  result.report_error = std::move(finished.report_error);
  return result;
}

// The signal a stop_fd (a signalfd) says came; one that is not a signalfd means "stop now".
int ReadStopSignal(int fd) {
  signalfd_siginfo info{};
  if (::read(fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    return static_cast<int>(info.ssi_signo);
  }
  return SIGINT;
}

}  // namespace

uint64_t WorkerNode::CacheBytes(SteadyTime now) {
  constexpr Millis kCacheSizeEvery{10000};
  if (options_.cache == nullptr) return 0;
  if (!measuring_cache_ && (!cache_measured_at_ || now - *cache_measured_at_ >= kCacheSizeEvery)) {
    // Off the loop: the cache's lock may be held by an eviction scanning a large directory.
    measuring_cache_ = true;
    cache_measured_at_ = now;
    BlobCache* cache = options_.cache;
    off_loop_.Post([this, cache]() -> OffLoop::Done {
      uint64_t bytes = cache->TotalBytes();
      return [this, bytes] {
        cache_bytes_ = bytes;
        measuring_cache_ = false;
      };
    });
  }
  return cache_bytes_;
}

std::string HostOs() {
  utsname u{};
  if (::uname(&u) != 0) return "unknown";
  std::string os = u.sysname;
  std::transform(os.begin(), os.end(), os.begin(), [](unsigned char c) { return std::tolower(c); });
  return os;
}

std::string HostArch() {
  utsname u{};
  return ::uname(&u) == 0 ? u.machine : "unknown";
}

WorkerNode::WorkerNode(zmq::context_t& context, const Clock& clock, WorkerNodeOptions options)
    : clock_(clock),
      options_(std::move(options)),
      link_(context, clock, /*router=*/false, "worker " + options_.name, "the coordinator"),
      artifacts_(ArtifactStoreOptions{.cache = options_.cache,
                                      .shared_fs = options_.shared_fs,
                                      .scratch_root = ScratchRoot(options_),
                                      .clock = &clock,
                                      .off_loop = &off_loop_}),
      pool_(clock, PoolOptionsFor(options_)),
      merges_(clock, PoolOptions{.slots = 1,
                                 .worker_name = options_.name,
                                 .scratch_root = options_.scratch_root,
                                 .leak_grace = options_.leak_grace,
                                 .output_cap = 1u << 20}),
      coordinator_(options_.liveness, clock.Now()) {
  // A refused or unreachable coordinator is retried by the socket: back off to 2 s between tries.
  link_.socket().set(zmq::sockopt::reconnect_ivl_max, 2000);
  if (options_.keys) {
    protocol::MakeCurveClient(link_.socket(), *options_.keys, options_.coordinator_key);
  }
}

void WorkerNode::CheckHandshakes() {
  for (const auto& handshake : link_.TakeHandshakeFailures()) {
    // The socket retries on its own: say each kind of failure once.
    join_failure_ = handshake.failure.why;
    if (!handshake.new_kind) continue;
    spdlog::error("worker {}: cannot join the coordinator at {}: {}", options_.name,
                  options_.endpoint, handshake.failure.why);
  }
}

void WorkerNode::Queue(protocol::Message message) {
  link_.Send({}, std::move(message));
  FlushOutbox();
}

void WorkerNode::FlushOutbox() {
  if (link_.Flush().sent > 0) coordinator_.Sent(clock_.Now());
}

std::string WorkerNode::WhyNotJoined() const {
  if (!join_failure_.empty()) return join_failure_;
  // ZeroMQ retries a refused connect without a word: look for ourselves.
  std::string probe = ProbeEndpoint(options_.endpoint, Millis(2000));
  if (probe.starts_with("something listens")) {
    return probe + ", but no testfarm coordinator answered";
  }
  return probe;
}

void WorkerNode::HandleMessage(protocol::Message& message, bool* bye) {
  coordinator_.Heard(clock_.Now());
  if (auto* job = std::get_if<protocol::JobAssign>(&message)) {
    if (drain_until_) {
      // Assigned before the coordinator heard of the drain.
      Queue(protocol::HandBack{job->lease, "the worker is draining"});
      return;
    }
    if (job->argv.empty())
      return FailJob(*job, ExitState::SpawnFailed(EINVAL, "the job has no command"));
    waiting_.push_back(std::move(*job));
  } else if (auto* chunk = std::get_if<protocol::Chunk>(&message)) {
    artifacts_.OnChunk(*chunk);
  } else if (auto* manifest = std::get_if<protocol::SetManifest>(&message)) {
    artifacts_.OnSetManifest(std::move(*manifest));
  } else if (auto* request = std::get_if<protocol::ProfileRequest>(&message)) {
    if (request->offset == 0) {
      CoverageOf(request->run).requested = true;  // the first piece goes once merges are done
    } else {
      SendProfilePiece(request->run, request->offset);
    }
  } else if (auto* cancel = std::get_if<protocol::Cancel>(&message)) {
    auto queued = std::find_if(waiting_.begin(), waiting_.end(),
                               [&](const auto& j) { return j.lease == cancel->lease; });
    if (queued != waiting_.end()) {
      protocol::JobResult result;
      result.lease = queued->lease;
      result.job_id = queued->job_id;
      result.state = ExitState::Cancelled("never started");
      waiting_.erase(queued);
      Queue(std::move(result));
    } else {
      pool_.Cancel(cancel->lease, "the run was stopped");
    }
  } else if (std::holds_alternative<protocol::Bye>(message)) {
    *bye = true;
  } else if (std::holds_alternative<protocol::Welcome>(message)) {
    if (!welcomed_)
      spdlog::info("worker {}: joined the run at {}", options_.name, options_.endpoint);
    welcomed_ = true;
  } else if (std::holds_alternative<protocol::Heartbeat>(message)) {
    // Heard() above is all a heartbeat is for.
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    spdlog::error("worker {}: the coordinator refused a message: {}", options_.name, error->text);
    if (!welcomed_) join_failure_ = "the coordinator refused us: " + error->text;
  } else {
    spdlog::warn("worker {}: unexpected {} message; ignored", options_.name,
                 protocol::TypeName(message));
  }
}

void WorkerNode::HandleIncoming(bool* bye) {
  link_.Receive(
      [&](const std::string&) { return "the coordinator at " + options_.endpoint; },
      [&](const std::string&, protocol::Message& message) { HandleMessage(message, bye); });
  FlushOutbox();  // the answers to bad frames
}

const char* WorkerNode::HealthState() const {
  if (!welcomed_) return "connecting";
  return drain_until_ ? "draining" : "connected";
}

bool WorkerNode::OnStopSignal(int signal) {
  stopping_ = true;
  const std::string name = SignalName(signal);
  const bool drain = signal == SIGTERM && !drain_until_ && welcomed_ && options_.drain_timeout &&
                     options_.drain_timeout->count() > 0;
  if (!drain) {
    if (welcomed_) Leave((drain_until_ ? "stopped while draining by " : "stopped by ") + name);
    return true;
  }
  drain_until_ = clock_.Now() + *options_.drain_timeout;
  Queue(protocol::Drain{name + ": draining for up to " + FormatDuration(*options_.drain_timeout)});
  for (const protocol::JobAssign& job : waiting_) {
    Queue(protocol::HandBack{job.lease, "the worker is draining"});
  }
  spdlog::info(
      "worker {}: {}: draining: no new tests; {} running may finish within {} (--drain-timeout); "
      "{} not started handed back",
      options_.name, name, pool_.running(), FormatDuration(*options_.drain_timeout),
      waiting_.size());
  waiting_.clear();
  return false;
}

void WorkerNode::Leave(const std::string& why) {
  std::size_t running = pool_.running();
  Queue(protocol::Bye{why});
  FlushOutbox();
  spdlog::info("worker {}: leaving: {}{}", options_.name, why,
               running == 0 ? "" : "; " + std::to_string(running) + " running tests handed back");
}

bool WorkerNode::DrainOver(SteadyTime now) {
  if (pool_.running() == 0 && waiting_.empty()) {
    Leave("drained: every running test finished");
    return true;
  }
  if (now >= *drain_until_) {
    Leave("the drain timed out after " + FormatDuration(*options_.drain_timeout));
    return true;
  }
  return false;
}

void WorkerNode::FailJob(const protocol::JobAssign& job, ExitState state) {
  protocol::JobResult result;
  result.lease = job.lease;
  result.job_id = job.job_id;
  result.state = std::move(state);
  Queue(std::move(result));
}

void WorkerNode::SendFetches() {
  for (protocol::SetRequest& request : artifacts_.TakeSetRequests()) Queue(std::move(request));
  for (protocol::Fetch& fetch : artifacts_.TakeFetches()) Queue(std::move(fetch));
}

void WorkerNode::StartQueuedJobs() {
  // In order, except that a job whose files are still being fetched lets later ones go first.
  for (auto it = waiting_.begin(); it != waiting_.end() && pool_.HasFreeSlot();) {
    ArtifactStore::Prepared prepared = artifacts_.Prepare(*it);
    if (prepared.status == ArtifactStore::Status::kWaiting) {
      ++it;
      continue;
    }
    protocol::JobAssign job = std::move(*it);
    it = waiting_.erase(it);
    if (prepared.status == ArtifactStore::Status::kFailed) {
      FailJob(job, ExitState::SpawnFailed(EIO, prepared.error));
      continue;
    }
    LaunchSpec spec;
    spec.argv = std::move(job.argv);
    spec.env = std::move(job.env);
    spec.cwd = std::move(job.cwd);
    spec.timeout = Millis(static_cast<long long>(job.timeout_ms));
    spec.kill_grace = Millis(static_cast<long long>(job.kill_grace_ms));
    spec.report_env = std::move(job.report_env);
    spec.inherit_output = options_.inherit_output;
    if (job.coverage) {
      auto profile = CoverageOf(job.run).collector.ProfileFileFor(job.lease);
      if (!profile) {
        FailJob(job, ExitState::SpawnFailed(EIO, "coverage: " + profile.error().message));
        continue;
      }
      spec.env["LLVM_PROFILE_FILE"] = *profile;
    }
    running_jobs_[job.lease] = Running{job.job_id, job.name, job.coverage, job.run};
    // From this word the coordinator counts the job as running (a lost worker counts against
    // it), and its timeout. Handed to the socket before the process is spawned: a test that
    // takes its worker down at once must not take the word with it, and ZeroMQ's I/O thread
    // writes it while the spawn and the test's start-up run. (A job that cannot start follows
    // with its result at once.)
    Queue(protocol::JobStarted{job.lease});
    FlushOutbox();
    pool_.Start(job.lease, std::move(spec));
  }
}

void WorkerNode::CollectFinished() {
  for (FinishedJob& finished : pool_.TakeFinished()) {
    Running job;
    if (auto it = running_jobs_.find(finished.token); it != running_jobs_.end()) {
      job = it->second;
      running_jobs_.erase(it);
    }
    protocol::JobResult result = ResultOf(finished, job.job_id);
    if (job.coverage) {
      bool exited = finished.state.kind() == ExitState::Kind::kExited;
      auto profiles = CoverageOf(job.run).collector.TakeJob(finished.token, job.name, exited);
      result.profiles = profiles.kept;
      result.profiles_empty = profiles.empty;
    }
    Queue(std::move(result));
  }
  RunMerges();
}

WorkerNode::RunCoverage& WorkerNode::CoverageOf(uint64_t run) {
  std::unique_ptr<RunCoverage>& coverage = coverage_[run];
  if (!coverage) {
    coverage =
        std::make_unique<RunCoverage>(CoverageOptions{.llvm_profdata = options_.llvm_profdata,
                                                      .scratch_root = ScratchRoot(options_),
                                                      .batch = 64});
  }
  return *coverage;
}

void WorkerNode::RunMerges() {
  for (FinishedJob& merge : merges_.TakeFinished()) {
    auto run = merge_run_.find(merge.token);
    if (run == merge_run_.end()) continue;
    if (auto it = coverage_.find(run->second); it != coverage_.end()) {
      it->second->collector.OnMergeFinished(merge);
    }
    merge_run_.erase(run);
  }
  for (auto& [run, coverage] : coverage_) {
    if (!merges_.HasFreeSlot()) break;
    if (auto spec = coverage->collector.NextMerge(coverage->requested)) {
      merges_.Start(++next_merge_, *spec);
      merge_run_[next_merge_] = run;
    }
  }
  // A run's profile goes once it was asked for and nothing of that run still runs or merges.
  for (auto it = coverage_.begin(); it != coverage_.end();) {
    uint64_t run = it->first;
    bool busy = !it->second->requested || !it->second->collector.Idle() ||
                std::any_of(merge_run_.begin(), merge_run_.end(),
                            [&](const auto& merge) { return merge.second == run; }) ||
                std::any_of(running_jobs_.begin(), running_jobs_.end(),
                            [&](const auto& job) { return job.second.run == run; });
    if (busy) {
      ++it;
      continue;
    }
    std::unique_ptr<RunCoverage> coverage = std::move(it->second);
    it = coverage_.erase(it);
    OfferProfile(run, std::move(coverage));
  }
}

void WorkerNode::OfferProfile(uint64_t run, std::unique_ptr<RunCoverage> coverage) {
  OfferedProfile offered;
  std::filesystem::path merged = coverage->collector.merged();
  if (!merged.empty()) {
    offered.fd = UniqueFd(::open(merged.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    if (!offered.fd || ::fstat(offered.fd.get(), &st) != 0) {
      offered.error = "cannot read " + merged.string() + ": " + ErrnoText(errno);
    } else {
      offered.size = static_cast<uint64_t>(st.st_size);
    }
  }
  offered.coverage = std::move(coverage);
  // A run whose coordinator stopped pulling (stopped, or past its wait) leaves its profile here:
  // only the latest few are kept.
  constexpr std::size_t kMaxOffered = 8;
  if (offered_.size() >= kMaxOffered) offered_.erase(offered_.begin());
  offered_[run] = std::move(offered);
  SendProfilePiece(run, 0);
}

void WorkerNode::SendProfilePiece(uint64_t run, uint64_t offset) {
  protocol::ProfileChunk piece;
  piece.run = run;
  piece.offset = offset;
  auto it = offered_.find(run);
  if (it == offered_.end()) {
    piece.last = true;
    piece.error = "no profile of this run is being sent";
    Queue(std::move(piece));
    return;
  }
  OfferedProfile& offered = it->second;
  piece.size = offered.size;
  std::string error = offered.error;
  if (error.empty() && offset < offered.size) {
    const std::size_t length = std::min<uint64_t>(protocol::kMaxChunkBytes, offered.size - offset);
    Result<std::string> data = ReadAt(offered.fd.get(), offset, length);
    if (!data || data->size() != length) {
      error = "cannot read the merged profile: " + (data ? "it shrank" : data.error().message);
    } else {
      piece.data = std::move(*data);
    }
  }
  if (!error.empty() || offset + piece.data.size() >= offered.size) {
    const CoverageCollector& collector = offered.coverage->collector;
    piece.last = true;
    piece.merged = collector.merged_count();
    piece.bad = collector.bad();
    piece.error = !error.empty() ? error : collector.error();
    if (!offered.error.empty()) piece.size = 0;
    offered_.erase(it);
  }
  Queue(std::move(piece));
}

Result<RunEnd> WorkerNode::ServeOneRun() {
  // Profiles offered on an earlier connection are pulled by no one now.
  offered_.clear();
  try {
    link_.socket().connect(options_.endpoint);
    if (options_.health != nullptr) options_.health->Set(HealthState(), clock_.Now());
    coordinator_ = Liveness(options_.liveness, clock_.Now());
    SuspensionGuard suspension(options_.liveness);
    suspension.Woke(clock_.Now());
    protocol::Hello hello{options_.name, pool_.slots(), HostOs(), HostArch(), options_.labels};
    Queue(hello);
    // Whatever ends this connection, bad frames not yet told are said.
    struct TellBadFrames {
      WorkerNode* node;
      ~TellBadFrames() {
        for (const std::string& line : node->link_.TakeUntoldBadFrames()) {
          spdlog::warn("worker {}: {}", node->options_.name, line);
        }
      }
    } tell_bad_frames{this};
    bool bye = false;
    int stop_signal = 0;
    bool incoming = false;
    protocol::PollLoop loop(clock_);
    loop.WatchFd(options_.stop_fd, [&] {
      stop_signal = ReadStopSignal(options_.stop_fd);
      loop.EndTurn();
    });
    loop.WatchSocket(
        link_.monitor_handle(), [] { return static_cast<short>(ZMQ_POLLIN); },
        [&](short) { CheckHandshakes(); });
    loop.WatchFds([&](std::vector<int>* fds) { pool_.CollectFds(fds); },
                  [&](int fd) { pool_.OnFdReady(fd); });
    loop.WatchFds([&](std::vector<int>* fds) { merges_.CollectFds(fds); },
                  [&](int fd) { merges_.OnFdReady(fd); });
    loop.WatchFd(off_loop_.fd(), [&] { off_loop_.RunFinished(); });
    // Read after the pool's events: results go out before new work comes in.
    loop.WatchSocket(
        link_.handle(), [&] { return link_.events(); },
        [&](short revents) { incoming = (revents & ZMQ_POLLIN) != 0; });
    loop.WakeBy([&] { return std::optional<SteadyTime>(coordinator_.NextDeadline()); });
    loop.WakeBy([&] { return welcomed_ ? std::nullopt : options_.join_by; });
    loop.WakeBy([&] { return pool_.NextDeadline(); });
    loop.WakeBy([&] { return artifacts_.NextDeadline(); });
    loop.WakeBy([&] { return merges_.NextDeadline(); });
    loop.WakeBy([&] { return drain_until_; });
    loop.WakeBy(
        [&] { return options_.health != nullptr ? options_.health->NextRefresh() : std::nullopt; });
    while (true) {
      StartQueuedJobs();
      SendFetches();
      // A job that could not start, or a cancel of one that had just exited, finishes without
      // any fd becoming ready: report it now, not after the next wake-up.
      CollectFinished();
      FlushOutbox();
      incoming = false;
      loop.Turn();
      if (stop_signal != 0 && OnStopSignal(std::exchange(stop_signal, 0))) {
        return RunEnd::kStopped;
      }
      pool_.OnTimers();
      merges_.OnTimers();
      CollectFinished();
      if (incoming) HandleIncoming(&bye);
      SteadyTime now = clock_.Now();
      // The loop wakes at least once per interval; a longer gap means this process was not
      // running (suspended, starved), which is no evidence against the coordinator.
      if (suspension.Woke(now)) coordinator_.Heard(now);
      if (!welcomed_ &&
          (coordinator_.Dead(now) || (options_.join_by && now >= *options_.join_by))) {
        end_reason_ = WhyNotJoined();
        return RunEnd::kCannotJoin;
      }
      if (coordinator_.Dead(now)) {
        end_reason_ = "no word from it for " + std::to_string(options_.liveness.liveness) +
                      " heartbeats" + (pool_.running() > 0 ? "; killing its running tests" : "");
        return RunEnd::kCoordinatorLost;
      }
      if (coordinator_.ShouldSendHeartbeat(now)) {
        // While the socket cannot deliver (no connection yet), one queued message is enough.
        if (link_.queued() == 0) Queue(protocol::Heartbeat{CacheBytes(now)});
        coordinator_.Sent(now);
      }
      FlushOutbox();
      if (options_.health != nullptr) options_.health->Set(HealthState(), now);
      if (drain_until_ && !bye) {
        CollectFinished();  // results of tests that just ended go before the goodbye
        if (DrainOver(now)) return RunEnd::kStopped;
      }
      if (bye) {
        waiting_.clear();
        pool_.CancelAll("the coordinator ended the run");
        if (pool_.running() == 0) break;
      }
    }
    return RunEnd::kCoordinatorSaidBye;
  } catch (const zmq::error_t& e) {
    // The context was shut down: the process that owns this worker is done with it. The pool's
    // destructor kills whatever is still running.
    if (e.num() == ETERM) return RunEnd::kContextClosed;
    return Error{std::string("worker socket: ") + e.what()};
  }
}

}  // namespace testfarm::worker
