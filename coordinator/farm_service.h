#pragma once
// What `testfarm serve` decides, with no socket, no file and no clock of its own: the farm core
// (workers, fair shares, runs) plus the clients that submit runs. A client asks which blobs the
// farm lacks, uploads them, submits its planned tests in parts and hears its run's reports as
// they happen; a client that leaves or falls silent stops its run, and nobody else's. At most
// `max_runs` runs share the slots at once; up to `max_queued` more wait their turn; beyond that
// a submission is refused, saying why.
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coordinator/dashboard_feed.h"
#include "coordinator/farm_core.h"
#include "coordinator/history_store.h"
#include "coordinator/run_core.h"
#include "protocol/messages.h"
#include "shared/clock.h"
#include "shared/liveness.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// Where uploaded blobs go: the farm's content-addressed store (a BlobCache in the shell).
class BlobStore {
 public:
  virtual ~BlobStore() = default;
  virtual bool Has(const std::string& sha256) = 0;
  // A piece of `peer`'s upload, in order. After its last piece the blob is verified and kept,
  // possibly later (off the event loop): the owner then calls FarmService::OnUploadVerified.
  virtual Status Receive(const std::string& peer, const protocol::Upload& piece) = 0;
  // Whether uploads of `peer` whose last piece came are still being verified.
  virtual bool Verifying(const std::string& peer) const = 0;
  // `peer` is gone: its unfinished uploads are dropped.
  virtual void Forget(const std::string& peer) = 0;
};

// The farm's run history (a HistoryStore in the shell): one for every run the farm serves.
class RunHistory {
 public:
  virtual ~RunHistory() = default;
  // What earlier runs say of each test of these suites (empty when the history cannot be read).
  virtual HistoryEstimates Estimates(const std::set<std::string>& suites) = 0;
  // A reporter that records the run into the history and passes everything on to `inner`.
  virtual std::unique_ptr<Reporter> Recorder(Reporter& inner, RunRecord run) = 0;
  // The answer to a client's question (`testfarm history|flaky --farm`, --rerun-failed).
  virtual protocol::HistoryAnswer Answer(const protocol::HistoryQuery& query) = 0;
};

struct FarmServiceOptions {
  LivenessOptions liveness;     // with workers and with clients alike
  std::size_t max_runs = 8;     // runs sharing the slots at once
  std::size_t max_queued = 64;  // runs waiting for one of those places
  RunOptions run_defaults;      // for what a submission leaves at 0
  // Told of every run and, a few times a second, the fleet: the dashboard, the metrics (or
  // both, through a TeeSink).
  DashboardSink* dashboard = nullptr;
};

class FarmService {
 public:
  // `history` (may be null: the farm keeps none) orders and records every run.
  FarmService(const Clock& clock, FarmServiceOptions options, BlobStore& store,
              RunHistory* history = nullptr);
  ~FarmService();

  void OnMessage(const std::string& peer, protocol::Message& message);
  // The store verified (or refused: `status`) an upload of `peer`: a refusal is told to the
  // client; a submission that waited for its uploads goes on.
  void OnUploadVerified(const std::string& peer, const std::string& sha256, const Status& status);
  // A message to `peer` could not be delivered: a worker is lost, a client gone.
  void OnUnreachable(const std::string& peer);
  void Tick();
  // The farm is stopping: every run stops (its client hears each test's end, with `why`),
  // waiting runs are told they will not run, and no run is taken any more.
  void Shutdown(const std::string& why);
  // After Shutdown, once every run has ended and its client has been told.
  bool Done() const;

  std::vector<Outgoing> TakeOutbox();
  std::vector<std::string> TakeGone() { return std::exchange(gone_, {}); }
  bool HasOutgoing() const { return !outbox_.empty() || !gone_.empty() || farm_.HasOutgoing(); }
  std::optional<SteadyTime> NextDeadline() const;

  bool IsWorker(const std::string& peer) const { return farm_.IsWorker(peer); }
  std::vector<std::string> WorkerPeers() const { return farm_.workers().Peers(); }
  std::string Describe(const std::string& peer) const;
  // Blobs of the runs the farm holds and of the clients preparing theirs: the ones workers may
  // fetch, and the store must keep.
  const std::multiset<std::string>& BlobsInUse() const { return blobs_in_use_; }
  protocol::FarmStatus Snapshot() const;
  // The workers and runs for the dashboard, and the farm's totals for the metrics.
  FleetView View(SteadyTime now) const;
  // The shell sent `bytes` of test files to a worker (a chunk it fetched): counted in View.
  void Shipped(uint64_t bytes) { bytes_shipped_ += bytes; }

 private:
  class RemoteReporter;
  struct Session {
    std::string peer;
    Liveness liveness;
    std::optional<protocol::Submit> submit;
    std::vector<protocol::RunTest> tests;
    std::vector<ArtifactSet> sets;
    bool submitted = false;         // every part came
    bool awaiting_uploads = false;  // submitted while its last uploads were being verified
    std::string run_name;
    std::optional<RunId> run;  // while its run holds slots
    bool gone = false;         // the client left: its run is being stopped
    // Profile pieces relayed to the client and not yet acknowledged (ProfileAck): at most
    // protocol::kProfileRelayWindow, counting those its run has asked workers for.
    std::size_t profile_unacked = 0;
    std::unique_ptr<RemoteReporter> reporter;
    std::unique_ptr<Reporter> recorder;  // records the run into the history, then `reporter`
    std::unique_ptr<Reporter> watched;   // tells the dashboard, then the history or `reporter`
    // Blobs the session asked about, uploaded or submits: each counted once in blobs_in_use_
    // until the session ends, so the store keeps them while the client prepares its run.
    std::set<std::string> blobs;
  };

  void OnClientMessage(Session& session, protocol::Message& message);
  void OnPart(Session& session, protocol::SubmitPart& part);
  // Admits a fully submitted run whose files are all in the store, else refuses it.
  void AdmitIfUploaded(Session& session);
  void Admit(Session& session);
  void StartRun(Session& session);
  protocol::HistoryAnswer AnswerHistory(const protocol::HistoryQuery& query);
  void Refuse(Session& session, const std::string& why);
  // The client left (bye, silence, unreachable): its run stops; it hears nothing more.
  void LoseClient(Session& session, const std::string& why);
  void EndRuns();
  void StartWaiting();
  void Drop(const std::string& peer);
  void Protect(Session& session, const std::string& sha256);
  void Unprotect(Session& session);
  void Send(const std::string& peer, protocol::Message message);
  std::size_t RunningCount() const;

  const Clock& clock_;
  FarmServiceOptions options_;
  BlobStore& store_;
  RunHistory* history_;
  FarmCore farm_;
  std::map<std::string, std::unique_ptr<Session>> sessions_;  // by client peer
  std::deque<std::string> waiting_;                           // client peers, in order
  std::multiset<std::string> blobs_in_use_;
  std::vector<Outgoing> outbox_;
  std::vector<std::string> gone_;
  uint64_t runs_taken_ = 0;
  uint64_t bytes_shipped_ = 0;
  bool shutting_down_ = false;
};

}  // namespace testfarm::coordinator
