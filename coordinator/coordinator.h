#pragma once
// The coordinator: a ROUTER socket around a farm of one run. It binds, authenticates (CurveZMQ
// with a ZAP handler), decodes what workers send and hands it to the FarmCore, sends what it
// wants sent, serves the files workers fetch and keeps the profiles they return. Everything the
// run decides is the core's; this class only does, driven by one protocol::PollLoop over the
// socket, the handshake monitor, the ZAP socket and a signal fd.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "coordinator/artifacts.h"
#include "coordinator/dashboard_feed.h"
#include "coordinator/farm_core.h"
#include "coordinator/report.h"
#include "coordinator/run_core.h"
#include "coordinator/test_spec.h"
#include "coordinator/zap_handler.h"
#include "protocol/curve.h"
#include "protocol/peer_link.h"
#include "protocol/poll_loop.h"
#include "shared/clock.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct CoordinatorOptions : RunOptions {
  // Heartbeats both ways; a worker silent for liveness x interval is dead and its jobs requeued.
  LivenessOptions liveness;
  // CurveZMQ: with `keys`, only workers holding a key in `allowed_workers` (or these keys
  // themselves, as the in-process worker does) may connect.
  std::optional<protocol::KeyPair> keys;
  std::vector<protocol::AllowedKey> allowed_workers;
  // Jobs name the files they need (content-addressed) and workers fetch the ones they lack.
  bool ship_artifacts = false;
  // Coverage: where the workers' merged profiles are kept.
  std::filesystem::path profile_dir;
  // The dashboard (`run --http`): shown the fleet a few times a second, this run as
  // `dashboard_run` (its id, label and client).
  DashboardSink* dashboard = nullptr;
  RunView dashboard_run;
};

class Coordinator {
 public:
  Coordinator(zmq::context_t& context, const Clock& clock, std::vector<TestSpec> tests,
              CoordinatorOptions options, Reporter& reporter);

  // Binds the ROUTER socket. Returns the bound endpoint (with the port resolved) or an error.
  Result<std::string> Bind(const std::string& endpoint);

  // Hashes what remote workers will fetch (with ship_artifacts): slow for big binaries, so it is
  // done before any worker connects. Run() calls it if the caller did not.
  void Prepare();

  // Runs until every test has a final state. `signal_fd` (or -1) becomes readable when the user
  // interrupts: the first signal stops the run gracefully, a second gives up waiting.
  RunSummary Run(int signal_fd);

 private:
  void Watch(protocol::PollLoop* loop, int signal_fd);
  void CheckHandshakes();
  void Serve(const std::string& peer, const protocol::Fetch& fetch);
  // Sends what the core wants sent; a worker found gone is told to the core (which may want
  // more sent).
  void Flush();
  // Hands the dashboard the fleet as it is, when it wants it (or `now_anyway`).
  void ShowFleet(bool now_anyway);

  std::optional<ZapHandler> zap_;  // before link_: it must exist before anyone connects
  protocol::PeerLink link_;
  const Clock& clock_;
  std::vector<TestSpec> tests_;
  CoordinatorOptions options_;
  Reporter& reporter_;
  ArtifactCatalog artifacts_;
  ServedFiles served_;
  std::vector<const ArtifactSet*> shipped_;  // by test, with ship_artifacts
  bool prepared_ = false;
  std::optional<FarmCore> farm_;  // while Run() runs: a farm of this one run
  RunId run_id_ = 0;
  RunCore* core_ = nullptr;
};

}  // namespace testfarm::coordinator
