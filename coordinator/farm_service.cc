#include "coordinator/farm_service.h"

#include <spdlog/spdlog.h>

#include "coordinator/farm_wire.h"

namespace testfarm::coordinator {

namespace {
constexpr uint64_t kMaxTestsPerRun = 10'000'000;
}  // namespace

// A run's reporter on the farm: everything it hears goes to the run's client, as messages.
class FarmService::RemoteReporter : public Reporter {
 public:
  RemoteReporter(FarmService& service, Session& session) : service_(service), session_(session) {}

  void OnRunStart(std::size_t) override {}
  void OnWorkerJoined(const std::string& name, unsigned slots) override {
    Say(protocol::WorkerJoined{name, slots});
  }
  void OnTestStarted(const std::string& name, const std::string& worker) override {
    Say(protocol::TestStarted{name, worker});
  }
  void OnTestSlow(const std::string& name, Millis running) override {
    Say(protocol::TestSlow{name, static_cast<uint64_t>(running.count())});
  }
  void OnRunning(std::size_t count, const std::string& longest, Millis longest_for) override {
    if (count == running_count_ && longest == longest_) return;
    running_count_ = count;
    longest_ = longest;
    Say(protocol::Running{count, longest, static_cast<uint64_t>(longest_for.count())});
  }
  void OnTestFinished(const TestReport& report, std::size_t running) override {
    Say(ToWire(report, running));
  }
  void OnRunEnd(const RunSummary& summary) override {
    protocol::RunFinished finished;
    finished.interrupted = summary.interrupted;
    finished.stop_reason = summary.stop_reason;
    finished.wall_ms = static_cast<uint64_t>(summary.wall.count());
    const CoverageSummary& coverage = summary.coverage;
    finished.raw_profiles = coverage.raw_profiles;
    finished.merged = coverage.merged;
    finished.empty = coverage.empty;
    finished.bad = coverage.bad;
    finished.errors = coverage.errors;
    finished.collect_ms = static_cast<uint64_t>(coverage.collect.count());
    Say(std::move(finished));
  }
  // A worker's merged profile of the run goes to the client a piece at a time, as each comes
  // from the worker: the farm never holds it whole.
  Result<std::filesystem::path> SendProfile(std::size_t index, uint64_t offset, uint64_t size,
                                            std::string_view data) {
    Say(protocol::ProfileData{static_cast<uint32_t>(index), offset, size, std::string(data)});
    ++session_.profile_unacked;
    if (offset + data.size() < size) return std::filesystem::path();
    return std::filesystem::path("profile-" + std::to_string(index) + " (sent to the client)");
  }

 private:
  void Say(protocol::Message message) {
    if (!session_.gone) service_.Send(session_.peer, std::move(message));
  }
  FarmService& service_;
  Session& session_;
  std::size_t running_count_ = 0;
  std::string longest_;
};

FarmService::FarmService(const Clock& clock, FarmServiceOptions options, BlobStore& store,
                         RunHistory* history)
    : clock_(clock),
      options_(std::move(options)),
      store_(store),
      history_(history),
      farm_(clock, FarmOptions{.liveness = options_.liveness, .single_run = false}) {}

FarmService::~FarmService() = default;

void FarmService::Send(const std::string& peer, protocol::Message message) {
  if (auto it = sessions_.find(peer); it != sessions_.end())
    it->second->liveness.Sent(clock_.Now());
  outbox_.push_back(Outgoing{peer, std::move(message)});
}

std::string FarmService::Describe(const std::string& peer) const {
  if (auto it = sessions_.find(peer); it != sessions_.end()) {
    const Session& session = *it->second;
    std::string who = session.submit && !session.submit->client.empty() ? session.submit->client
                                                                        : std::string("?");
    return "client " + who;
  }
  return farm_.Describe(peer);
}

std::size_t FarmService::RunningCount() const {
  std::size_t running = 0;
  for (const auto& [peer, session] : sessions_) running += session->run ? 1 : 0;
  return running;
}

void FarmService::OnMessage(const std::string& peer, protocol::Message& message) {
  if (auto it = sessions_.find(peer); it != sessions_.end()) {
    it->second->liveness.Heard(clock_.Now());
    OnClientMessage(*it->second, message);
    return;
  }
  if (std::holds_alternative<protocol::StatusRequest>(message)) {
    Send(peer, Snapshot());
    return;
  }
  if (auto* query = std::get_if<protocol::HistoryQuery>(&message)) {
    Send(peer, AnswerHistory(*query));
    return;
  }
  bool opens_session = std::holds_alternative<protocol::HasBlobs>(message) ||
                       std::holds_alternative<protocol::Upload>(message) ||
                       std::holds_alternative<protocol::Submit>(message);
  if (opens_session) {
    if (shutting_down_) {
      Send(peer, protocol::Accepted{"", 0, "the farm is shutting down"});
      return;
    }
    auto session = std::make_unique<Session>(Session{peer,
                                                     Liveness(options_.liveness, clock_.Now()),
                                                     {},
                                                     {},
                                                     {},
                                                     false,
                                                     false,
                                                     {},
                                                     {},
                                                     false,
                                                     0,
                                                     nullptr,
                                                     nullptr,
                                                     nullptr,
                                                     {}});
    Session& added = *session;
    sessions_[peer] = std::move(session);
    OnClientMessage(added, message);
    return;
  }
  bool client_message = std::holds_alternative<protocol::SubmitPart>(message) ||
                        std::holds_alternative<protocol::StopRun>(message) ||
                        std::holds_alternative<protocol::ProfileAck>(message);
  if (client_message ||
      (std::holds_alternative<protocol::Heartbeat>(message) && !farm_.IsWorker(peer))) {
    // A client (or worker) this farm has no record of: it restarted, or gave up on the peer.
    Send(peer, protocol::Bye{"this farm does not know you: it may have restarted, or it lost "
                             "you; your run, if any, is gone"});
    return;
  }
  // A client saying goodbye after the farm let it go: nothing to do.
  if (std::holds_alternative<protocol::Bye>(message) && !farm_.IsWorker(peer)) return;
  farm_.OnMessage(peer, message);
}

void FarmService::OnClientMessage(Session& session, protocol::Message& message) {
  if (auto* has = std::get_if<protocol::HasBlobs>(&message)) {
    protocol::MissingBlobs missing;
    for (const std::string& sha : has->sha256) {
      Protect(session, sha);
      if (!store_.Has(sha)) missing.sha256.push_back(sha);
    }
    Send(session.peer, std::move(missing));
  } else if (auto* upload = std::get_if<protocol::Upload>(&message)) {
    if (session.blobs.count(upload->sha256) == 0) {
      Send(session.peer, protocol::ErrorReply{"upload of " + upload->sha256.substr(0, 12) +
                                              ": not asked about first (has)"});
      return;
    }
    if (Status stored = store_.Receive(session.peer, *upload); !stored) {
      Send(session.peer, protocol::ErrorReply{"upload of " + upload->sha256.substr(0, 12) + ": " +
                                              stored.error().message});
    }
  } else if (auto* submit = std::get_if<protocol::Submit>(&message)) {
    if (session.submit) {
      Send(session.peer, protocol::ErrorReply{"submit: this connection already submitted a run"});
      return;
    }
    if (submit->test_count > kMaxTestsPerRun) {
      return Refuse(session, "a run of " + std::to_string(submit->test_count) +
                                 " tests is more than a farm takes (" +
                                 std::to_string(kMaxTestsPerRun) + ")");
    }
    session.submit = std::move(*submit);
  } else if (auto* part = std::get_if<protocol::SubmitPart>(&message)) {
    OnPart(session, *part);
  } else if (std::holds_alternative<protocol::StopRun>(message)) {
    if (session.run) {
      farm_.Run(*session.run)->OnInterrupt();
    } else if (session.submitted) {  // still waiting: it never runs, and its client hears so
      protocol::RunFinished finished;
      finished.interrupted = true;
      finished.stop_reason = "interrupted";
      Send(session.peer, std::move(finished));
      std::erase(waiting_, session.peer);
      Unprotect(session);
      session.submitted = false;
      session.submit.reset();
    }
  } else if (std::holds_alternative<protocol::ProfileAck>(message)) {
    if (session.profile_unacked > 0) --session.profile_unacked;
    if (session.run) farm_.Run(*session.run)->ResumeProfiles();
  } else if (std::holds_alternative<protocol::StatusRequest>(message)) {
    Send(session.peer, Snapshot());
  } else if (auto* query = std::get_if<protocol::HistoryQuery>(&message)) {
    Send(session.peer, AnswerHistory(*query));
  } else if (auto* bye = std::get_if<protocol::Bye>(&message)) {
    LoseClient(session, "its client left" + (bye->reason.empty() ? "" : ": " + bye->reason));
  } else if (std::holds_alternative<protocol::Heartbeat>(message)) {
    // Heard above.
  } else {
    Send(session.peer, protocol::ErrorReply{std::string("unexpected message type ") +
                                            protocol::TypeName(message) + " from a client"});
  }
}

void FarmService::OnPart(Session& session, protocol::SubmitPart& part) {
  if (!session.submit || session.submitted) {
    Send(session.peer, protocol::ErrorReply{"tests: no submission in progress on this connection"});
    return;
  }
  if (session.tests.size() + part.tests.size() > session.submit->test_count) {
    return Refuse(session, "more tests than the " + std::to_string(session.submit->test_count) +
                               " the submission announced");
  }
  if (session.sets.size() + part.file_sets.size() >
      std::max<uint64_t>(session.submit->test_count, 1)) {
    return Refuse(session, "more file sets than tests");
  }
  for (protocol::RunTest& test : part.tests) session.tests.push_back(std::move(test));
  for (const protocol::FileSet& set : part.file_sets) session.sets.push_back(FromWire(set));
  if (!part.last) return;
  session.submitted = true;
  if (session.tests.size() != session.submit->test_count) {
    return Refuse(session, "the submission announced " +
                               std::to_string(session.submit->test_count) + " tests but sent " +
                               std::to_string(session.tests.size()));
  }
  for (const protocol::RunTest& test : session.tests) {
    if (test.file_set > session.sets.size()) {
      return Refuse(session,
                    test.name + ": file set " + std::to_string(test.file_set) + " was not sent");
    }
  }
  // Its last uploads may still be being verified (off the loop): the run waits for them.
  if (store_.Verifying(session.peer)) {
    session.awaiting_uploads = true;
    return;
  }
  AdmitIfUploaded(session);
}

void FarmService::OnUploadVerified(const std::string& peer, const std::string& sha256,
                                   const Status& status) {
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return;  // the client is gone
  Session& session = *it->second;
  if (!status) {
    Send(peer,
         protocol::ErrorReply{"upload of " + sha256.substr(0, 12) + ": " + status.error().message});
  }
  if (session.awaiting_uploads && !store_.Verifying(peer)) {
    session.awaiting_uploads = false;
    AdmitIfUploaded(session);
  }
}

void FarmService::AdmitIfUploaded(Session& session) {
  for (const ArtifactSet& set : session.sets) {
    for (const protocol::ArtifactFile& file : set.files) {
      Protect(session, file.sha256);
      if (!store_.Has(file.sha256)) {
        return Refuse(session, set.root + "/" + file.path + " (" + file.sha256.substr(0, 12) +
                                   ") was not uploaded");
      }
    }
  }
  Admit(session);
}

void FarmService::Refuse(Session& session, const std::string& why) {
  spdlog::warn("farm: refused a run from {}: {}", Describe(session.peer), why);
  Send(session.peer, protocol::Accepted{"", 0, why});
  Drop(session.peer);
}

void FarmService::Admit(Session& session) {
  if (shutting_down_) return Refuse(session, "the farm is shutting down");
  session.run_name = "run-" + std::to_string(++runs_taken_);
  if (RunningCount() < options_.max_runs && waiting_.empty()) {
    Send(session.peer, protocol::Accepted{session.run_name, 0, ""});
    StartRun(session);
    return;
  }
  if (waiting_.size() >= options_.max_queued) {
    return Refuse(session, "the farm is full: " + std::to_string(RunningCount()) +
                               " runs running and " + std::to_string(waiting_.size()) +
                               " waiting (serve --max-runs, --max-queued); try again later");
  }
  Send(session.peer,
       protocol::Accepted{session.run_name, static_cast<uint32_t>(waiting_.size()), ""});
  waiting_.push_back(session.peer);
  spdlog::info("farm: {} from {} waits behind {} runs", session.run_name, Describe(session.peer),
               waiting_.size() - 1);
}

protocol::HistoryAnswer FarmService::AnswerHistory(const protocol::HistoryQuery& query) {
  if (history_ == nullptr) {
    return protocol::HistoryAnswer{"", "this farm keeps no history (started with --no-history)"};
  }
  return history_->Answer(query);
}

void FarmService::StartRun(Session& session) {
  RunId id = farm_.NewRunId();
  RunOptions options = FromWire(*session.submit, options_.run_defaults);
  options.scheduler.first_lease = FarmCore::FirstLease(id);
  options.run_id = id;
  std::vector<TestSpec> specs;
  std::vector<const ArtifactSet*> shipped;
  specs.reserve(session.tests.size());
  for (const protocol::RunTest& test : session.tests) {
    specs.push_back(FromWire(test, specs.empty() ? nullptr : &specs.back()));
    shipped.push_back(test.file_set == 0 ? nullptr : &session.sets[test.file_set - 1]);
  }
  session.tests.clear();
  session.tests.shrink_to_fit();
  session.reporter = std::make_unique<RemoteReporter>(*this, session);
  Reporter* reporter = session.reporter.get();
  const HistoryEstimates estimates =
      history_ != nullptr ? history_->Estimates(SuitesOf(specs)) : HistoryEstimates{};
  if (history_ != nullptr) {
    // Every pipeline's runs order each other's: failed last time first, then longest first.
    if (!session.submit->keep_order) options.start_order = StartOrder(specs, estimates);
    options.expected_case_time = ExpectedCaseTimes(specs, estimates);
    RunRecord record;
    record.id = NewRunId();
    record.label = session.submit->label;
    record.client = session.submit->client;
    record.started_ms = UnixMillisNow();
    session.recorder = history_->Recorder(*session.reporter, std::move(record));
    reporter = session.recorder.get();
  }
  if (options_.dashboard != nullptr) {
    RunStartView start;
    start.id = session.run_name;
    start.label = session.submit->label;
    start.client = session.submit->client;
    start.started_ms = UnixMillisNow();
    for (const TestSpec& spec : specs) start.names.push_back(spec.name);
    if (history_ != nullptr) start.expected = ExpectedDurations(specs, estimates);
    options_.dashboard->RunStarted(std::move(start));
    session.watched =
        std::make_unique<WatchedReporter>(*reporter, *options_.dashboard, session.run_name);
    reporter = session.watched.get();
  }
  ProfileSink profiles;
  if (options.coverage) {
    RemoteReporter* remote = session.reporter.get();
    profiles = [remote](std::size_t index, uint64_t offset, uint64_t size, std::string_view data) {
      return remote->SendProfile(index, offset, size, data);
    };
  }
  auto core = std::make_unique<RunCore>(clock_, std::move(specs), options, *reporter,
                                        std::move(shipped), std::move(profiles));
  spdlog::info("farm: {} from {} starts: {} tests", session.run_name, Describe(session.peer),
               core->test_count());
  if (options.coverage) {
    // The client's credit: pieces it has not acknowledged hold back the pulls from workers.
    core->SetProfileRoom([&session] {
      return protocol::kProfileRelayWindow > session.profile_unacked
                 ? protocol::kProfileRelayWindow - session.profile_unacked
                 : 0;
    });
  }
  core->Start();
  farm_.AddRun(id, std::move(core), RunLimits{session.submit->max_slots});
  session.run = id;
}

void FarmService::LoseClient(Session& session, const std::string& why) {
  store_.Forget(session.peer);
  if (session.run) {
    spdlog::warn("farm: {} stops: {}", session.run_name, why);
    session.gone = true;
    farm_.Run(*session.run)->Stop(why);
    return;  // dropped once its run has ended (EndRuns)
  }
  Drop(session.peer);
}

void FarmService::Protect(Session& session, const std::string& sha256) {
  if (session.blobs.insert(sha256).second) blobs_in_use_.insert(sha256);
}

void FarmService::Unprotect(Session& session) {
  for (const std::string& sha : session.blobs) {
    if (auto used = blobs_in_use_.find(sha); used != blobs_in_use_.end()) blobs_in_use_.erase(used);
  }
  session.blobs.clear();
}

void FarmService::Drop(const std::string& peer_ref) {
  const std::string peer = peer_ref;  // it may be the session's own, erased below
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return;
  std::erase(waiting_, peer);
  Unprotect(*it->second);
  store_.Forget(peer);
  sessions_.erase(it);
  gone_.push_back(peer);  // whatever still waits to be sent to it is stale
}

void FarmService::OnUnreachable(const std::string& peer) {
  if (auto it = sessions_.find(peer); it != sessions_.end()) {
    LoseClient(*it->second, "its client became unreachable");
    return;
  }
  farm_.OnUnreachable(peer);
}

void FarmService::EndRuns() {
  std::vector<std::string> ended;
  for (auto& [peer, session] : sessions_) {
    if (!session->run || farm_.Run(*session->run)->phase() != RunPhase::kDone) continue;
    RunSummary summary = farm_.FinishRun(*session->run);  // its client hears run-finished
    spdlog::info("farm: {} from {} ended: {}", session->run_name, Describe(peer),
                 SummaryLine(summary));
    session->run.reset();
    Unprotect(*session);
    // A client that left is forgotten now; one still here keeps its session until it says bye.
    if (session->gone) ended.push_back(peer);
  }
  for (const std::string& peer : ended) Drop(peer);
}

void FarmService::StartWaiting() {
  while (!waiting_.empty() && RunningCount() < options_.max_runs && !shutting_down_) {
    std::string peer = waiting_.front();
    waiting_.pop_front();
    auto it = sessions_.find(peer);
    if (it != sessions_.end()) StartRun(*it->second);
  }
}

void FarmService::Tick() {
  SteadyTime now = clock_.Now();
  std::vector<Session*> lost;
  for (auto& [peer, session] : sessions_) {
    if (session->gone) continue;
    if (session->liveness.Dead(now)) {
      lost.push_back(session.get());
    } else if (session->liveness.ShouldSendHeartbeat(now)) {
      Send(peer, protocol::Heartbeat{});
    }
  }
  for (Session* session : lost) {
    spdlog::warn("farm: {} silent for {} heartbeats", Describe(session->peer),
                 options_.liveness.liveness);
    LoseClient(*session, "its client was lost (silent)");
  }
  farm_.Tick();
  EndRuns();
  StartWaiting();
  if (options_.dashboard != nullptr && options_.dashboard->FleetDue(now)) {
    options_.dashboard->Fleet(View(now));
  }
}

void FarmService::Shutdown(const std::string& why) {
  if (shutting_down_) return;
  shutting_down_ = true;
  for (const std::string& peer : waiting_) {
    Send(peer, protocol::Bye{why + ": the run did not start"});
  }
  std::vector<std::string> waiting(waiting_.begin(), waiting_.end());
  for (const std::string& peer : waiting) Drop(peer);
  for (auto& [peer, session] : sessions_) {
    if (session->run) farm_.Run(*session->run)->Stop(why);
  }
}

bool FarmService::Done() const {
  return shutting_down_ && RunningCount() == 0;
}

std::vector<Outgoing> FarmService::TakeOutbox() {
  std::vector<Outgoing> out = farm_.TakeOutbox();
  for (Outgoing& message : outbox_) out.push_back(std::move(message));
  outbox_.clear();
  for (std::string& peer : farm_.TakeGone()) gone_.push_back(std::move(peer));
  return out;
}

std::optional<SteadyTime> FarmService::NextDeadline() const {
  std::optional<SteadyTime> next = farm_.NextDeadline();
  for (const auto& [peer, session] : sessions_) {
    SteadyTime at = session->liveness.NextDeadline();
    if (!next || at < *next) next = at;
  }
  if (options_.dashboard != nullptr) {
    if (auto fleet = options_.dashboard->NextFleetAt(); fleet && (!next || *fleet < *next)) {
      next = fleet;
    }
  }
  return next;
}

protocol::FarmStatus FarmService::Snapshot() const {
  protocol::FarmStatus status;
  status.max_runs = static_cast<uint32_t>(options_.max_runs);
  std::map<std::string, std::vector<std::string>> running_on;  // worker peer -> tests
  for (const auto& [peer, session] : sessions_) {
    if (!session->run) continue;
    const RunCore* run = farm_.Run(*session->run);
    for (auto& running : run->RunningNow()) running_on[running.worker].push_back(running.test);
  }
  for (const std::string& peer : farm_.workers().Peers()) {
    const WorkerRegistry::Worker* worker = farm_.workers().Find(peer);
    protocol::WorkerStatus row;
    row.name = worker->name;
    row.labels = worker->labels;
    row.slots = worker->slots;
    row.draining = worker->draining;
    row.tests = running_on[peer];
    row.busy = static_cast<uint32_t>(row.tests.size());
    status.workers.push_back(std::move(row));
  }
  auto add_run = [&](const Session& session, const char* state) {
    protocol::RunStatus row;
    row.run_id = session.run_name;
    row.client = session.submit ? session.submit->client : "";
    row.label = session.submit ? session.submit->label : "";
    row.state = state;
    if (session.run) {
      const RunCore* run = farm_.Run(*session.run);
      row.tests = run->test_count();
      row.finished = run->progress().total();
      row.failed = run->progress().failed;
      row.running = static_cast<uint32_t>(run->RunningNow().size());
      for (const std::string& peer : farm_.workers().Peers()) {
        row.slots += farm_.GrantOf(*session.run, peer);
      }
    } else {
      row.tests = session.tests.size();
    }
    status.runs.push_back(std::move(row));
  };
  for (const auto& [peer, session] : sessions_) {
    if (!session->run) continue;
    add_run(*session, RunStateWord(farm_.Run(*session->run)->phase()));
  }
  for (const std::string& peer : waiting_) add_run(*sessions_.at(peer), "waiting");
  return status;
}

FleetView FarmService::View(SteadyTime now) const {
  FleetView view;
  view.at_ms = UnixMillisNow();
  std::map<uint64_t, std::string> run_ids;
  for (const auto& [peer, session] : sessions_) {
    if (!session->run) continue;
    run_ids[*session->run] = session->run_name;
    view.runs.push_back(ViewOfRun(farm_, *session->run, session->run_name, session->submit->label,
                                  session->submit->client));
  }
  for (const std::string& peer : waiting_) {
    const Session& session = *sessions_.at(peer);
    RunView run;
    run.id = session.run_name;
    run.label = session.submit ? session.submit->label : "";
    run.client = session.submit ? session.submit->client : "";
    run.state = "waiting";
    run.tests = session.tests.size();
    run.queued = run.tests;
    view.runs.push_back(std::move(run));
  }
  view.workers = WorkersOf(farm_, run_ids, now, view.at_ms);
  view.dispatch_latency = farm_.DispatchLatency();
  view.bytes_shipped = bytes_shipped_;
  return view;
}

}  // namespace testfarm::coordinator
