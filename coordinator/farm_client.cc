#include "coordinator/farm_client.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <map>

#include "coordinator/farm_wire.h"
#include "protocol/poll_loop.h"
#include "shared/duration.h"
#include "shared/errno_text.h"
#include "shared/file_io.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

namespace {
constexpr std::size_t kTestsPerPart = 500;
constexpr Millis kConfirmSlack{5000};  // beyond the run's own stop allowance
}  // namespace

namespace {

// Sends `request` to the farm and waits (up to the connect timeout) for a message `accept` takes.
Status AskFarm(zmq::context_t& context, const Clock& clock, const FarmClientOptions& options,
               protocol::Message request, const std::function<bool(protocol::Message&)>& accept) {
  protocol::PeerLink link(context, clock, /*router=*/false, "client", "the farm");
  if (options.keys) protocol::MakeCurveClient(link.socket(), *options.keys, options.farm_key);
  bool answered = false;
  std::string failure;
  try {
    link.socket().connect(options.endpoint);
    link.Send("", std::move(request));
    protocol::PollLoop loop(clock);
    loop.WatchSocket(
        link.handle(), [&] { return link.events(); },
        [&](short) {
          link.Receive([](const std::string&) { return std::string("the farm"); },
                       [&](const std::string&, protocol::Message& message) {
                         if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
                           failure = "the farm: " + error->text;
                         } else if (accept(message)) {
                           answered = true;
                         }
                       });
          link.Flush();
        });
    loop.WatchSocket(
        link.monitor_handle(), [] { return static_cast<short>(ZMQ_POLLIN); },
        [&](short) {
          for (const auto& handshake : link.TakeHandshakeFailures()) {
            failure = "cannot join the farm: " + handshake.failure.why;
          }
        });
    SteadyTime deadline = clock.Now() + options.connect_timeout;
    loop.WakeBy([&]() -> std::optional<SteadyTime> { return deadline; });
    while (!answered && failure.empty() && clock.Now() < deadline) loop.Turn();
  } catch (const zmq::error_t& e) {
    failure = std::string("the connection to the farm failed: ") + e.what();
  }
  if (answered) return Ok{};
  if (failure.empty()) {
    failure = "the farm at " + options.endpoint + " did not answer within " +
              FormatDuration(options.connect_timeout);
  }
  return Error{failure};
}

}  // namespace

Result<protocol::FarmStatus> QueryFarmStatus(zmq::context_t& context, const Clock& clock,
                                             const FarmClientOptions& options) {
  std::optional<protocol::FarmStatus> status;
  Status asked =
      AskFarm(context, clock, options, protocol::StatusRequest{}, [&](protocol::Message& message) {
        auto* answer = std::get_if<protocol::FarmStatus>(&message);
        if (answer != nullptr) status = std::move(*answer);
        return answer != nullptr;
      });
  if (!asked) return asked.error();
  return std::move(*status);
}

Result<std::string> QueryFarmHistory(zmq::context_t& context, const Clock& clock,
                                     const FarmClientOptions& options,
                                     protocol::HistoryQuery query) {
  std::optional<protocol::HistoryAnswer> history;
  Status asked =
      AskFarm(context, clock, options, std::move(query), [&](protocol::Message& message) {
        auto* answer = std::get_if<protocol::HistoryAnswer>(&message);
        if (answer != nullptr) history = std::move(*answer);
        return answer != nullptr;
      });
  if (!asked) return asked.error();
  if (!history->error.empty()) return Error{"the farm: " + history->error};
  return std::move(history->json);
}

FarmClient::FarmClient(zmq::context_t& context, const Clock& clock, FarmClientOptions options)
    : clock_(clock),
      options_(std::move(options)),
      link_(context, clock, /*router=*/false, "client", "the farm"),
      farm_(options_.liveness, clock.Now()),
      deadline_(clock.Now() + options_.connect_timeout),
      profiles_(options_.profile_dir) {
  // Uploads are read piece by piece as the socket takes them: keep its own queue short.
  link_.socket().set(zmq::sockopt::sndhwm, 8);
  if (options_.keys) protocol::MakeCurveClient(link_.socket(), *options_.keys, options_.farm_key);
}

void FarmClient::Send(protocol::Message message) {
  farm_.Sent(clock_.Now());
  link_.Send("", std::move(message));
}

void FarmClient::Fail(const std::string& why) {
  if (stage_ == Stage::kDone) return;
  failure_ = why;
  stop_reason_ = why;
  stage_ = Stage::kDone;
}

void FarmClient::Submit() {
  protocol::Submit submit = ToWire(run_options_, options_.max_slots);
  submit.client = options_.client_name;
  submit.label = options_.label;
  submit.keep_order = options_.keep_order;
  submit.test_count = tests_.size();
  Send(std::move(submit));
  std::map<const ArtifactSet*, uint32_t> set_index;  // 1-based, in first use order
  std::vector<protocol::FileSet> sets;
  std::vector<protocol::RunTest> wire;
  for (std::size_t t = 0; t < tests_.size(); ++t) {
    const ArtifactSet* set = t < shipped_.size() ? shipped_[t] : nullptr;
    uint32_t index = 0;
    if (set != nullptr && !set->files.empty()) {
      auto [it, added] = set_index.emplace(set, static_cast<uint32_t>(set_index.size() + 1));
      if (added) sets.push_back(ToWire(*set));
      index = it->second;
    }
    wire.push_back(ToWire(tests_[t], index));
  }
  for (std::size_t first = 0; first < wire.size() || first == 0; first += kTestsPerPart) {
    protocol::SubmitPart part;
    std::size_t end = std::min(wire.size(), first + kTestsPerPart);
    for (std::size_t t = first; t < end; ++t) part.tests.push_back(std::move(wire[t]));
    if (first == 0) part.file_sets = std::move(sets);
    part.last = end == wire.size();
    Send(std::move(part));
    if (wire.empty()) break;
  }
  stage_ = Stage::kAccepting;
}

void FarmClient::PumpUploads() {
  while (stage_ == Stage::kUploading && link_.queued() == 0) {
    if (uploads_.empty()) {
      Submit();
      return;
    }
    Upload& upload = uploads_.back();
    protocol::Upload piece;
    piece.sha256 = upload.sha256;
    piece.offset = upload.offset;
    piece.size = upload.size;
    if (!upload.fd) upload.fd = UniqueFd(::open(upload.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!upload.fd) {
      Fail("cannot upload " + upload.path.string() + ": " + ErrnoText(errno));
      return;
    }
    uint64_t length = std::min<uint64_t>(protocol::kMaxChunkBytes, upload.size - upload.offset);
    Result<std::string> data = ReadAt(upload.fd.get(), upload.offset, length);
    if (!data || data->size() != length) {
      Fail("cannot upload " + upload.path.string() + ": " +
           (data ? std::string("it changed while being uploaded") : data.error().message));
      return;
    }
    piece.data = std::move(*data);
    upload.offset += length;
    if (upload.offset >= upload.size) uploads_.pop_back();
    Send(std::move(piece));
  }
}

void FarmClient::OnMessage(protocol::Message& message) {
  farm_.Heard(clock_.Now());
  if (auto* missing = std::get_if<protocol::MissingBlobs>(&message)) {
    if (stage_ != Stage::kAsking) return;
    for (const std::string& sha : missing->sha256) {
      auto it = blobs_.find(sha);
      if (it == blobs_.end()) continue;
      std::error_code ec;
      uint64_t size = std::filesystem::file_size(it->second, ec);
      if (ec) return Fail("cannot upload " + it->second.string() + ": " + ec.message());
      uploads_.push_back(Upload{sha, it->second, size, 0, UniqueFd()});
    }
    if (!uploads_.empty()) {
      uint64_t bytes = 0;
      for (const Upload& upload : uploads_) bytes += upload.size;
      spdlog::info("farm: uploading {} files ({} bytes) the farm does not hold", uploads_.size(),
                   bytes);
    }
    stage_ = Stage::kUploading;
    PumpUploads();
  } else if (auto* accepted = std::get_if<protocol::Accepted>(&message)) {
    if (!accepted->error.empty()) return Fail("the farm refused the run: " + accepted->error);
    stage_ = Stage::kRunning;
    if (accepted->waiting_behind > 0) {
      std::fprintf(stderr, "testfarm: the farm is busy: %s waits behind %u other runs\n",
                   accepted->run_id.c_str(), accepted->waiting_behind);
    }
  } else if (auto* joined = std::get_if<protocol::WorkerJoined>(&message)) {
    reporter_->OnWorkerJoined(joined->name, joined->slots);
  } else if (auto* started = std::get_if<protocol::TestStarted>(&message)) {
    reporter_->OnTestStarted(started->name, started->worker);
  } else if (auto* slow = std::get_if<protocol::TestSlow>(&message)) {
    reporter_->OnTestSlow(slow->name, Millis(static_cast<Millis::rep>(slow->running_ms)));
  } else if (auto* running = std::get_if<protocol::Running>(&message)) {
    running_ = running->count;
    longest_ = running->longest;
    longest_since_ = clock_.Now() - Millis(static_cast<Millis::rep>(running->longest_ms));
  } else if (auto* done = std::get_if<protocol::TestDone>(&message)) {
    auto report = FromWire(*done);
    if (!report || done->test >= tests_.size()) {
      spdlog::warn("farm: a report the run cannot place was dropped ({})",
                   report ? "test " + std::to_string(done->test) + " is not in the run"
                          : report.error().message);
      return;
    }
    const protocol::JobResult* result = done->result.empty() ? nullptr : &done->result.front();
    ledger_->Record(done->test, std::move(*report), result, done->running);
  } else if (auto* piece = std::get_if<protocol::ProfileData>(&message)) {
    profiles_.Add(*piece);
    Send(protocol::ProfileAck{piece->index, piece->offset});  // the farm relays more
  } else if (auto* finished = std::get_if<protocol::RunFinished>(&message)) {
    interrupted_ = interrupted_ || finished->interrupted;
    stop_reason_ = finished->stop_reason;
    CoverageSummary& coverage = ledger_->summary().coverage;
    coverage.raw_profiles = finished->raw_profiles;
    coverage.merged = finished->merged;
    coverage.empty = finished->empty;
    coverage.bad = finished->bad;
    coverage.errors = finished->errors;
    coverage.collect = Millis(static_cast<Millis::rep>(finished->collect_ms));
    // One the farm could not finish relaying (it says why in its errors) is left out.
    coverage.profiles = profiles_.Whole();
    for (const std::string& error : profiles_.errors()) coverage.errors.push_back(error);
    stage_ = Stage::kDone;
  } else if (auto* bye = std::get_if<protocol::Bye>(&message)) {
    Fail("the farm ended the run: " + bye->reason);
  } else if (auto* error = std::get_if<protocol::ErrorReply>(&message)) {
    if (stage_ != Stage::kRunning) return Fail("the farm: " + error->text);
    spdlog::warn("farm: {}", error->text);
  }
}

void FarmClient::OnSignal() {
  SteadyTime now = clock_.Now();
  interrupted_ = true;
  if (stage_ != Stage::kRunning) {
    Send(protocol::Bye{"interrupted"});
    stop_reason_ = "interrupted";
    stage_ = Stage::kDone;
    return;
  }
  if (!first_signal_at_) {
    first_signal_at_ = now;
    Send(protocol::StopRun{});
    give_up_at_ = now + run_options_.scheduler.kill_grace + run_options_.stop_slack + kConfirmSlack;
  } else if (now - *first_signal_at_ >= std::chrono::seconds(1)) {
    Send(protocol::StopRun{});  // the farm stops waiting for the cancelled tests
    give_up_at_ = std::min(*give_up_at_, now + kConfirmSlack);
  }
}

RunSummary FarmClient::Run(std::vector<TestSpec> tests,
                           const std::vector<const ArtifactSet*>& shipped,
                           const RunOptions& options, Reporter& reporter, int signal_fd) {
  tests_ = std::move(tests);
  shipped_ = shipped;
  run_options_ = options;
  reporter_ = &reporter;
  ledger_.emplace(clock_, tests_, reporter);
  ledger_->Start();
  reporter.OnRunStart(tests_.size());
  protocol::HasBlobs has;
  for (const ArtifactSet* set : shipped_) {
    if (set == nullptr) continue;
    for (const protocol::ArtifactFile& file : set->files) {
      if (blobs_.emplace(file.sha256, std::filesystem::path(set->root) / file.path).second) {
        has.sha256.push_back(file.sha256);
      }
    }
  }
  bool heard = false;
  try {
    link_.socket().connect(options_.endpoint);
    Send(std::move(has));
    protocol::PollLoop loop(clock_);
    loop.WatchSocket(
        link_.handle(), [this] { return link_.events(); },
        [&](short) {
          link_.Receive([](const std::string&) { return std::string("the farm"); },
                        [&](const std::string&, protocol::Message& message) {
                          heard = true;
                          OnMessage(message);
                        });
          link_.Flush();
        });
    loop.WatchSocket(
        link_.monitor_handle(), [] { return static_cast<short>(ZMQ_POLLIN); },
        [&](short) {
          for (const auto& handshake : link_.TakeHandshakeFailures()) {
            // Before any word from the farm a refused handshake is final.
            if (!heard) Fail("cannot join the farm: " + handshake.failure.why);
          }
        });
    loop.WatchFd(signal_fd, [&] {
      signalfd_siginfo info{};
      if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) OnSignal();
    });
    loop.WakeBy([&]() -> std::optional<SteadyTime> {
      SteadyTime at = heard ? farm_.NextDeadline() : deadline_;
      if (give_up_at_) at = std::min(at, *give_up_at_);
      return at;
    });
    while (stage_ != Stage::kDone) {
      loop.Turn();
      SteadyTime now = clock_.Now();
      if (!heard && now >= deadline_) {
        Fail("the farm at " + options_.endpoint + " did not answer within " +
             FormatDuration(options_.connect_timeout));
      } else if (heard && farm_.Dead(now)) {
        Fail("the farm was lost: no word from it for " +
             FormatDuration(options_.liveness.interval * options_.liveness.liveness));
      } else if (give_up_at_ && now >= *give_up_at_) {
        stop_reason_ = "interrupted; the farm did not confirm the cancellations in time";
        stage_ = Stage::kDone;
      } else if (heard && farm_.ShouldSendHeartbeat(now)) {
        Send(protocol::Heartbeat{});
      }
      PumpUploads();
      link_.Flush();
      if (stage_ == Stage::kRunning) {
        reporter_->OnRunning(
            running_, longest_,
            longest_.empty() ? Millis(0)
                             : std::chrono::duration_cast<Millis>(clock_.Now() - longest_since_));
      }
    }
    Send(protocol::Bye{"done"});
    link_.Flush();
  } catch (const zmq::error_t& e) {
    Fail(std::string("the connection to the farm failed: ") + e.what());
  }
  for (const std::string& line : link_.TakeUntoldBadFrames()) spdlog::warn("farm: {}", line);
  std::string not_run_reason = !failure_.empty() ? failure_
                               : interrupted_    ? std::string("the run stopped: interrupted")
                                                 : std::string("the farm never reported it");
  ledger_->RecordTheRestNotRun(not_run_reason);
  ledger_->summary().interrupted = interrupted_;
  ledger_->summary().stop_reason = stop_reason_;
  return ledger_->Close();
}

}  // namespace testfarm::coordinator
