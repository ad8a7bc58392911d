#include "coordinator/farm_server.h"

#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <map>
#include <set>

#include "coordinator/artifacts.h"

namespace testfarm::coordinator {

// The farm's blob store: uploads land in a BlobCache, verified before they count. Verifying
// (hashing, fdatasync) and committing run off the event loop: a client uploading a binary of
// gigabytes never holds up the workers' heartbeats.
class FarmServer::Store : public BlobStore {
 public:
  Store(BlobCache cache, FarmService* service, OffLoop* off_loop)
      : cache_(std::move(cache)), service_(service), off_loop_(off_loop) {}

  bool Has(const std::string& sha256) override { return cache_.Find(sha256).has_value(); }

  Status Receive(const std::string& peer, const protocol::Upload& piece) override {
    auto& uploads = uploads_[peer];
    auto it = uploads.find(piece.sha256);
    if (it == uploads.end()) {
      if (piece.offset != 0) return Error{"a piece past the start of an upload not begun"};
      if (uploads.size() >= kMaxUploadsPerPeer) {
        return Error{"more than " + std::to_string(kMaxUploadsPerPeer) +
                     " uploads at once from one client"};
      }
      if (piece.size > cache_.max_bytes()) {
        return Error{"a blob of " + std::to_string(piece.size) +
                     " bytes is larger than the farm's store (--store-size)"};
      }
      auto pending = cache_.Begin(piece.sha256, piece.size);
      if (!pending) return pending.error();
      it = uploads.emplace(piece.sha256, std::move(*pending)).first;
    }
    if (Status written = it->second.Write(piece.offset, piece.data); !written) {
      uploads.erase(it);
      return written;
    }
    if (it->second.written() < piece.size) return Ok{};
    PendingBlob done = std::move(it->second);
    uploads.erase(it);
    // Blobs runs still use are never evicted to make room.
    std::set<std::string> keep(service_->BlobsInUse().begin(), service_->BlobsInUse().end());
    ++verifying_[peer];
    CommitOffLoop(cache_, off_loop_, std::move(done), std::move(keep),
                  [this, peer, sha256 = piece.sha256](Result<std::filesystem::path> kept) {
                    if (--verifying_[peer] == 0) verifying_.erase(peer);
                    service_->OnUploadVerified(peer, sha256,
                                               kept ? Status(Ok{}) : Status(kept.error()));
                  });
    return Ok{};
  }

  bool Verifying(const std::string& peer) const override { return verifying_.contains(peer); }

  void Forget(const std::string& peer) override { uploads_.erase(peer); }

  static constexpr std::size_t kMaxUploadsPerPeer = 4;

  std::optional<std::filesystem::path> Find(const std::string& sha256) {
    return cache_.Find(sha256);
  }

 private:
  BlobCache cache_;
  FarmService* service_;
  OffLoop* off_loop_;
  std::map<std::string, std::map<std::string, PendingBlob>> uploads_;  // by peer, by blob
  std::map<std::string, unsigned> verifying_;  // by peer: uploads being verified
};

// The farm's history: one store for every run, written from the event loop in batched
// transactions (HistoryReporter); a store that fails is warned about and the runs go on.
class FarmServer::History final : public RunHistory {
 public:
  History(const Clock& clock, std::unique_ptr<HistoryStore> store)
      : clock_(clock), store_(std::move(store)) {}

  HistoryEstimates Estimates(const std::set<std::string>& suites) override {
    auto estimates = store_->Estimates(suites);
    if (estimates) return std::move(*estimates);
    spdlog::warn("farm: history: {}; runs start in the order given", estimates.error().message);
    return {};
  }
  std::unique_ptr<Reporter> Recorder(Reporter& inner, RunRecord run) override {
    return std::make_unique<HistoryReporter>(
        clock_, inner, *store_, std::move(run),
        [](const std::string& problem) { spdlog::warn("farm: history: {}", problem); });
  }
  protocol::HistoryAnswer Answer(const protocol::HistoryQuery& query) override {
    Result<std::string> json = Error{"unknown question '" + query.what + "'"};
    if (query.what == "attempts") {
      json = HistoryJson(*store_, query.test, static_cast<int64_t>(query.since_ms));
    } else if (query.what == "flaky") {
      json = FlakyJson(*store_, static_cast<int64_t>(query.since_ms));
    } else if (query.what == "failed") {
      json = FailedJson(*store_, query.label);
    }
    if (!json) return protocol::HistoryAnswer{"", json.error().message};
    return protocol::HistoryAnswer{std::move(*json), ""};
  }

 private:
  const Clock& clock_;
  std::unique_ptr<HistoryStore> store_;
};

Result<std::unique_ptr<FarmServer>> FarmServer::Create(zmq::context_t& context, const Clock& clock,
                                                       FarmServerOptions options) {
  auto cache = BlobCache::Open(options.store);
  if (!cache) return cache.error();
  std::unique_ptr<HistoryStore> history;
  if (!options.history.empty()) {
    std::vector<std::string> warnings;
    auto store = HistoryStore::Open(options.history, &warnings);
    for (const std::string& warning : warnings) spdlog::warn("farm: history: {}", warning);
    if (store) {
      history = std::move(*store);
    } else {
      spdlog::warn("farm: history: {}; the farm keeps no history", store.error().message);
    }
  }
  return std::unique_ptr<FarmServer>(
      new FarmServer(context, clock, std::move(options), std::move(*cache), std::move(history)));
}

FarmServer::FarmServer(zmq::context_t& context, const Clock& clock, FarmServerOptions options,
                       BlobCache cache, std::unique_ptr<HistoryStore> history)
    : link_(context, clock, /*router=*/true, "farm", "the peer"),
      clock_(clock),
      options_(std::move(options)),
      store_(std::make_unique<Store>(std::move(cache), &service_, &off_loop_)),
      history_(history ? std::make_unique<History>(clock, std::move(history)) : nullptr),
      service_(clock, options_.service, *store_, history_.get()) {
  if (options_.keys) {
    zap_.emplace(context, options_.allowed);
    protocol::MakeCurveServer(link_.socket(), *options_.keys);
  }
}

FarmServer::~FarmServer() = default;

Result<std::string> FarmServer::Bind(const std::string& endpoint) {
  try {
    link_.socket().bind(endpoint);
    return link_.socket().get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    return Error{"cannot listen on " + endpoint + ": " + e.what()};
  }
}

void FarmServer::CheckHandshakes() {
  if (zap_) zap_->HandleRequests();
  for (const auto& handshake : link_.TakeHandshakeFailures()) {
    if (handshake.new_kind) {
      spdlog::warn("farm: refused a connection on {}: {}", handshake.failure.endpoint,
                   handshake.failure.why);
    }
  }
}

void FarmServer::Flush() {
  bool more = true;
  while (more) {
    for (Outgoing& out : service_.TakeOutbox()) link_.Send(out.peer, std::move(out.message));
    for (const std::string& gone : service_.TakeGone()) link_.Forget(gone);
    for (const std::string& gone : link_.Flush().gone) service_.OnUnreachable(gone);
    more = service_.HasOutgoing();
  }
}

void FarmServer::ServeFetch(const std::string& peer, const protocol::Fetch& fetch) {
  protocol::Chunk chunk;
  if (!service_.IsWorker(peer)) {
    chunk.error = "not a worker of this farm";
  } else if (service_.BlobsInUse().count(fetch.sha256) == 0) {
    chunk.error = "no run on this farm has that content";
  } else {
    chunk = served_.Read(fetch, [&]() -> Result<std::filesystem::path> {
      std::optional<std::filesystem::path> path = store_->Find(fetch.sha256);
      if (!path) return Error{"the farm's store lost that content"};
      return *path;
    });
  }
  chunk.sha256 = fetch.sha256;
  chunk.offset = fetch.offset;
  if (chunk.error.empty()) service_.Shipped(chunk.data.size());
  link_.Send(peer, std::move(chunk));
}

void FarmServer::OnSignal() {
  SteadyTime now = clock_.Now();
  if (!first_signal_at_) {
    first_signal_at_ = now;
    spdlog::info("farm: shutting down: stopping every run");
    service_.Shutdown("the farm is shutting down");
  } else if (now - *first_signal_at_ >= std::chrono::seconds(1)) {
    spdlog::warn("farm: interrupted again: leaving now");
    leave_now_ = true;
  }
}

void FarmServer::Watch(protocol::PollLoop* loop, int signal_fd) {
  auto readable = [] { return static_cast<short>(ZMQ_POLLIN); };
  loop->WatchSocket(
      link_.handle(), [this] { return link_.events(); },
      [this](short) {
        link_.Receive([this](const std::string& peer) { return service_.Describe(peer); },
                      [this](const std::string& peer, protocol::Message& message) {
                        service_.OnMessage(peer, message);
                        if (auto* fetch = std::get_if<protocol::Fetch>(&message)) {
                          ServeFetch(peer, *fetch);
                        }
                        Flush();
                      });
        Flush();
      });
  loop->WatchSocket(link_.monitor_handle(), readable, [this](short) { CheckHandshakes(); });
  if (zap_) loop->WatchSocket(zap_->handle(), readable, [this](short) { CheckHandshakes(); });
  loop->WatchFd(signal_fd, [this, signal_fd] {
    signalfd_siginfo info{};
    if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) OnSignal();
  });
  loop->WatchFd(off_loop_.fd(), [this] {
    off_loop_.RunFinished();
    Flush();
  });
  loop->WakeBy([this] { return service_.NextDeadline(); });
  loop->WakeBy([this] { return link_.NextDeadline(); });
}

void FarmServer::Serve(int signal_fd) {
  protocol::PollLoop loop(clock_);
  Watch(&loop, signal_fd);
  try {
    while (!leave_now_ && !service_.Done()) {
      loop.Turn();
      service_.Tick();
      Flush();
    }
    // Workers go back to waiting for a farm (this one, restarted, or another).
    for (const std::string& peer : service_.WorkerPeers()) {
      link_.Send(peer, protocol::Bye{"the farm is shutting down"});
    }
    link_.Flush();
  } catch (const zmq::error_t& e) {
    spdlog::error("farm: socket failure: {}", e.what());
  }
  for (const std::string& line : link_.TakeUntoldBadFrames()) spdlog::warn("farm: {}", line);
}

}  // namespace testfarm::coordinator
