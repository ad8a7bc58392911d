#include "coordinator/dashboard_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <charconv>

#include "coordinator/history_store.h"
#include "coordinator/http_plumbing.h"

namespace testfarm::coordinator {
namespace {

// The history as the dashboard reads it: its own read-only connection, opened when first asked
// (a local run creates the file as it starts), one query at a time.
class StoreHistory : public DashboardHistory {
 public:
  explicit StoreHistory(std::string path) : path_(std::move(path)) {}

  Result<std::string> Flaky(int64_t since_ms, std::size_t limit) override {
    std::lock_guard lock(mutex_);
    auto store = Store();
    if (!store) return store.error();
    return FlakyJson(**store, since_ms, limit);
  }
  Result<std::string> Trend(const std::string& test, int64_t since_ms) override {
    std::lock_guard lock(mutex_);
    auto store = Store();
    if (!store) return store.error();
    return TrendJson(**store, test, since_ms);
  }

 private:
  Result<HistoryStore*> Store() {
    if (!store_) {
      std::vector<std::string> warnings;
      auto opened = HistoryStore::Open(path_, &warnings, /*read_only=*/true);
      if (!opened) return opened.error();
      store_ = std::move(*opened);
    }
    return store_.get();
  }

  std::mutex mutex_;
  std::string path_;
  std::unique_ptr<HistoryStore> store_;
};

// httplib's thread pool with a bounded queue: once `max_queued` connections wait for a thread,
// the listener serves the next one itself, so further ones wait in the kernel's backlog rather
// than as open sockets here (slow or idle connections cannot use up the process's descriptors).
class BoundedPool : public httplib::TaskQueue {
 public:
  BoundedPool(std::size_t threads, std::size_t max_queued)
      : pool_(threads), max_queued_(max_queued) {}
  void enqueue(std::function<void()> fn) override {
    if (queued_->load() >= max_queued_) {
      fn();
      return;
    }
    ++*queued_;
    pool_.enqueue([queued = queued_, fn = std::move(fn)] {
      --*queued;
      fn();
    });
  }
  void shutdown() override { pool_.shutdown(); }

 private:
  httplib::ThreadPool pool_;
  std::shared_ptr<std::atomic<std::size_t>> queued_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::size_t max_queued_;
};

HttpRequest RequestOf(const httplib::Request& req) {
  HttpRequest request;
  request.method = req.method;
  request.path = req.path;
  for (const auto& [name, value] : req.params) request.params.emplace_back(name, value);
  request.authorization = req.get_header_value("Authorization");
  request.host = req.get_header_value("Host");
  return request;
}

void Send(httplib::Response& res, const HttpReply& reply) {
  res.status = reply.status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(reply.body, reply.content_type.c_str());
}

}  // namespace

bool IsLoopbackHost(const std::string& host) {
  // HOST[:PORT], with [V6] in brackets.
  std::string name = host;
  if (!name.empty() && name.front() == '[') {
    std::size_t close = name.find(']');
    name = close == std::string::npos ? "" : name.substr(1, close - 1);
  } else if (auto colon = name.rfind(':'); colon != std::string::npos) {
    name = name.substr(0, colon);
  }
  if (name == "localhost") return true;
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, name.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return inet_pton(AF_INET6, name.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Result<HttpAddress> ParseHttpAddress(const std::string& address, const std::string& flag) {
  HttpAddress out;
  std::string port_text = address;
  if (auto colon = address.rfind(':'); colon != std::string::npos) {
    out.host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
      out.host = out.host.substr(1, out.host.size() - 2);
    }
    if (out.host.empty()) {
      return Error(flag + " " + address + ": no host before the port (e.g. 127.0.0.1:8080)");
    }
  } else {
    out.host = "127.0.0.1";
  }
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), out.port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || out.port < 0 ||
      out.port > 65535 || port_text.empty()) {
    return Error(flag + " " + address + ": '" + port_text +
                 "' is not a port (0 to 65535; 0 picks a free one)");
  }
  in_addr v4{};
  in6_addr v6{};
  if (out.host == "localhost") {
    out.host = "127.0.0.1";
    out.loopback = true;
  } else if (inet_pton(AF_INET, out.host.c_str(), &v4) == 1) {
    out.loopback = (ntohl(v4.s_addr) >> 24) == 127;
  } else if (inet_pton(AF_INET6, out.host.c_str(), &v6) == 1) {
    out.loopback = IN6_IS_ADDR_LOOPBACK(&v6);
  } else {
    return Error(flag + " " + address + ": '" + out.host +
                 "' is not an IP address (give one, or localhost)");
  }
  return out;
}

Status CheckHttpExposure(const HttpAddress& address, const std::string& token, bool insecure) {
  if (address.loopback || !token.empty() || insecure) return Ok{};
  return Error("--http " + address.host +
               ": not a loopback address, so anyone who can reach it "
               "could read the dashboard: give --http-token TOKEN (or TESTFARM_HTTP_TOKEN) and "
               "open the page with it, or --insecure to serve it to anyone");
}

class DashboardServer::Impl {
 public:
  Impl(DashboardOptions options, const Clock& clock)
      : options_(std::move(options)),
        clock_(clock),
        model_(options_.limits),
        history_(options_.history.empty() ? nullptr
                                          : std::make_unique<StoreHistory>(options_.history)) {
    info_.mode = options_.mode;
    info_.version = options_.version;
    info_.started_ms = UnixMillisNow();
    info_.history = history_ != nullptr;
  }

  ~Impl() { Stop(); }

  Result<std::string> Start(const HttpAddress& address) {
    loopback_only_ = address.loopback;
    // Threads for the live streams and some for everything else: a browser holds one stream.
    const std::size_t threads = options_.max_streams + 8;
    server_.new_task_queue = [threads] { return new BoundedPool(threads, 4 * threads); };
    server_.set_payload_max_length(options_.max_request_bytes);
    server_.set_read_timeout(10, 0);
    const auto stall =
        std::chrono::duration_cast<std::chrono::microseconds>(options_.stall_timeout);
    server_.set_write_timeout(stall.count() / 1000000, stall.count() % 1000000);
    server_.set_keep_alive_timeout(5);
    RouteEveryRequest(
        server_, [this](const httplib::Request& req, httplib::Response& res) { Route(req, res); },
        [this](const httplib::Request& req, httplib::Response& res) {
          const std::string length = req.get_header_value("Content-Length");
          uint64_t declared = 0;
          std::from_chars(length.data(), length.data() + length.size(), declared);
          Send(res, declared > options_.max_request_bytes || length.empty()
                        ? ErrorReply(413, "the request is too large: a GET carries no body")
                        : ErrorReply(400, "a GET carries no body"));
        });
    // What the pre-routing handler leaves (none: it answers everything) and errors httplib finds
    // itself (a request too large, a bad request line): JSON, like every other error.
    server_.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      const char* why = res.status == 413   ? "the request is too large"
                        : res.status == 414 ? "the request's URI is too long"
                        : res.status == 400 ? "a malformed request"
                                            : "the request cannot be served";
      Send(res, ErrorReply(res.status, why));
    });
    server_.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          Send(res, ErrorReply(500, "internal error"));
        });
    Result<int> port = BindHttp(server_, address, "--http");
    if (!port) return port.error();
    listener_.Start(server_);
    applier_ = std::thread([this] { ApplyLoop(); });
    return HttpUrl(address, *port, "/");
  }

  void Stop() {
    {
      std::lock_guard lock(inbox_mutex_);
      if (stopping_) return;
      stopping_ = true;
    }
    inbox_cv_.notify_all();
    { std::lock_guard lock(model_mutex_); }
    changed_.notify_all();
    listener_.Stop();
    if (applier_.joinable()) applier_.join();
  }

  void Push(DashboardEvent event) {
    {
      std::lock_guard lock(inbox_mutex_);
      ++pushed_;
      // A fleet view is the whole fleet: one waiting is replaced by a newer one.
      if (std::holds_alternative<FleetView>(event) && pending_fleet_ < inbox_.size()) {
        inbox_[pending_fleet_] = std::move(event);
        ++applied_;  // the one replaced counts as applied
      } else {
        if (std::holds_alternative<FleetView>(event)) pending_fleet_ = inbox_.size();
        inbox_.push_back(std::move(event));
      }
    }
    inbox_cv_.notify_one();
  }

  bool WaitDropped(std::size_t count, Millis timeout) {
    std::unique_lock lock(inbox_mutex_);
    return applied_cv_.wait_for(lock, timeout, [&] { return dropped_.load() >= count; });
  }

  bool WaitApplied(Millis timeout) {
    std::unique_lock lock(inbox_mutex_);
    uint64_t target = pushed_;
    return applied_cv_.wait_for(lock, timeout, [&] { return applied_ >= target; });
  }

 private:
  void ApplyLoop() {
    for (;;) {
      std::vector<DashboardEvent> batch;
      {
        std::unique_lock lock(inbox_mutex_);
        inbox_cv_.wait(lock, [&] { return stopping_ || !inbox_.empty(); });
        if (stopping_) return;
        batch.swap(inbox_);
        pending_fleet_ = static_cast<std::size_t>(-1);
      }
      {
        std::unique_lock lock(model_mutex_);
        for (DashboardEvent& event : batch) model_.Apply(std::move(event));
      }
      changed_.notify_all();
      {
        std::lock_guard lock(inbox_mutex_);
        applied_ += batch.size();
      }
      applied_cv_.notify_all();
    }
  }

  FarmInfo Info() const {
    FarmInfo info = info_;
    info.streams = streams_.load();
    info.streams_dropped = dropped_.load();
    return info;
  }

  // Answers every request.
  bool Route(const httplib::Request& req, httplib::Response& res) {
    HttpRequest request = RequestOf(req);
    if (req.method != "GET" && req.method != "HEAD") {
      res.set_header("Allow", "GET, HEAD");
      Send(res, ErrorReply(405, req.method + " is not served: the dashboard is read-only"));
      return true;
    }
    if (loopback_only_ && options_.token.empty() && !IsLoopbackHost(request.host)) {
      // A page elsewhere whose name was made to resolve to 127.0.0.1 (DNS rebinding) must not
      // read what a loopback dashboard serves.
      Send(res, ErrorReply(403, "this dashboard answers only requests for a loopback host"));
      return true;
    }
    if (auto denied = Unauthorized(options_.token, request)) {
      Send(res, *denied);
      return true;
    }
    switch (EndpointOf(request.path)) {
      case Endpoint::kPage:
        Send(res, PageFile(request.path));
        res.set_header("Cache-Control", "no-cache");
        return true;
      case Endpoint::kModel: {
        std::shared_lock lock(model_mutex_);
        Send(res, AnswerFromModel(model_, Info(), UnixMillisNow(), request));
        return true;
      }
      case Endpoint::kHistory:
        Send(res, AnswerFromHistory(history_.get(), UnixMillisNow(), request));
        return true;
      case Endpoint::kEvents:
        Stream(request, res);
        return true;
      case Endpoint::kNotFound:
        Send(res, ErrorReply(404, "no such page: " + request.path));
        return true;
    }
    return true;
  }

  struct StreamState {
    StreamCursor cursor;
    bool started = false;
    SteadyTime last_sent;
  };

  void Stream(const HttpRequest& request, httplib::Response& res) {
    if (!request.params.empty()) {
      Send(res, ErrorReply(400, "unknown parameter '" + request.params.front().first +
                                    "' (this endpoint takes none)"));
      return;
    }
    if (streams_.fetch_add(1) >= options_.max_streams) {
      streams_.fetch_sub(1);
      Send(res, ErrorReply(503, "too many live streams open (" +
                                    std::to_string(options_.max_streams) + "); try again later"));
      return;
    }
    auto state = std::make_shared<StreamState>();
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, state](std::size_t, httplib::DataSink& sink) { return StreamSome(*state, sink); },
        [this](bool) { streams_.fetch_sub(1); });
  }

  // Writes the stream's next event, waiting for a change (at most one event per interval) or
  // for the keep-alive; false ends the stream.
  bool StreamSome(StreamState& state, httplib::DataSink& sink) {
    std::string text;
    nlohmann::json event;  // serialized once the model's lock is released
    const char* type = "update";
    {
      std::shared_lock lock(model_mutex_);
      if (!state.started) {
        event = model_.Snapshot(Info(), UnixMillisNow(), &state.cursor);
        type = "snapshot";
        state.started = true;
      } else {
        SteadyTime earliest = state.last_sent + options_.stream_interval;
        SteadyTime keep_alive = state.last_sent + options_.keep_alive;
        // Coalesce: nothing goes out before `earliest`, whatever changed meanwhile.
        if (SteadyTime now = clock_.Now(); now < earliest) {
          changed_.wait_for(lock, earliest - now, [&] { return Stopping(); });
        }
        if (SteadyTime now = clock_.Now(); now < keep_alive) {
          changed_.wait_for(lock, keep_alive - now,
                            [&] { return Stopping() || model_.version() != state.cursor.version; });
        }
        if (Stopping()) return false;
        event = model_.Update(Info(), UnixMillisNow(), &state.cursor);
      }
    }
    text = event.is_null() ? ": keep-alive\n\n"
                           : std::string("event: ") + type + "\ndata: " + JsonText(event) + "\n\n";
    SteadyTime before = clock_.Now();
    if (!WriteInPieces(sink, text)) {
      // Closed by the browser, or unread for the stall timeout: only the latter is "dropped".
      if (clock_.Now() - before >= options_.stall_timeout / 2) {
        {
          std::lock_guard lock(inbox_mutex_);
          dropped_.fetch_add(1);
        }
        applied_cv_.notify_all();
        spdlog::warn("dashboard: a live stream stopped reading for {} s; closed it",
                     options_.stall_timeout.count() / 1000);
      }
      return false;
    }
    state.last_sent = clock_.Now();
    return true;
  }

  // Writes `text` a piece at a time, so that a stop is noticed between pieces rather than after
  // a large event has crawled out to a slow browser.
  bool WriteInPieces(httplib::DataSink& sink, const std::string& text) {
    constexpr std::size_t kPiece = 16 * 1024;
    for (std::size_t at = 0; at < text.size(); at += kPiece) {
      if (at > 0 && Stopping()) return false;
      if (!sink.write(text.data() + at, std::min(kPiece, text.size() - at))) return false;
    }
    return true;
  }

  bool Stopping() {
    std::lock_guard lock(inbox_mutex_);
    return stopping_;
  }

  DashboardOptions options_;
  const Clock& clock_;
  bool loopback_only_ = true;
  FarmInfo info_;

  std::mutex inbox_mutex_;
  std::condition_variable inbox_cv_;
  std::condition_variable applied_cv_;
  std::vector<DashboardEvent> inbox_;
  uint64_t pushed_ = 0;
  std::size_t pending_fleet_ = static_cast<std::size_t>(-1);  // where a fleet view waits
  uint64_t applied_ = 0;
  bool stopping_ = false;

  std::shared_mutex model_mutex_;
  std::condition_variable_any changed_;
  DashboardModel model_;

  std::unique_ptr<StoreHistory> history_;
  std::atomic<std::size_t> streams_{0};
  std::atomic<std::size_t> dropped_{0};
  httplib::Server server_;
  HttpListener listener_;  // after server_: stopped before it goes
  std::thread applier_;
};

Result<std::unique_ptr<DashboardServer>> DashboardServer::Start(DashboardOptions options,
                                                                const Clock& clock) {
  auto address = ParseHttpAddress(options.address);
  if (!address) return address.error();
  if (auto exposed = CheckHttpExposure(*address, options.token, options.insecure); !exposed) {
    return exposed.error();
  }
  const std::size_t output_tail = options.limits.output_tail;
  auto impl = std::make_unique<Impl>(std::move(options), clock);
  auto url = impl->Start(*address);
  if (!url) return url.error();
  std::unique_ptr<DashboardServer> server(new DashboardServer(std::move(impl)));
  server->url_ = *url;
  server->output_tail_ = output_tail;
  return server;
}

DashboardServer::DashboardServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DashboardServer::~DashboardServer() = default;

void DashboardServer::Push(DashboardEvent event) {
  impl_->Push(std::move(event));
}

bool DashboardServer::WaitApplied(Millis timeout) {
  return impl_->WaitApplied(timeout);
}

bool DashboardServer::WaitDropped(std::size_t count, Millis timeout) {
  return impl_->WaitDropped(count, timeout);
}

bool DashboardServer::FleetDue(SteadyTime now) {
  return fleet_pacer_.Due(now);
}

std::optional<SteadyTime> DashboardServer::NextFleetAt() const {
  return fleet_pacer_.NextAt();
}

void DashboardServer::Fleet(FleetView view) {
  Push(std::move(view));
}

void DashboardServer::RunStarted(RunStartView run) {
  Push(std::move(run));
}

void DashboardServer::RunBegan(const std::string& run) {
  Push(RunBeganEvent{run, UnixMillisNow()});
}

void DashboardServer::TestFinished(const std::string& run, const TestReport& report) {
  Push(TestDoneEvent{run, Compact(report, output_tail_)});
}

void DashboardServer::RunEnded(const std::string& run, const RunSummary& summary) {
  Push(RunEndEvent{run, CountsOf(summary), SummaryLine(summary), summary.stop_reason,
                   UnixMillisNow()});
}

}  // namespace testfarm::coordinator
