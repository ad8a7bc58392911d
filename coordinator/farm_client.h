#pragma once
// `testfarm run --farm`: the client's side of a standing farm. The run was discovered and
// planned here, as for a local run; the client uploads the files the farm lacks, submits the
// tests and follows the run, feeding what the farm reports into its own ledger, so the console,
// JUnit and JSON are written here exactly as for a local run. Whatever happens (the farm
// refuses the run, restarts, falls silent, the user interrupts) every test is reported once.
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "coordinator/artifacts.h"
#include "coordinator/profile_pieces.h"
#include "coordinator/report.h"
#include "coordinator/run_core.h"
#include "coordinator/test_ledger.h"
#include "coordinator/test_spec.h"
#include "protocol/curve.h"
#include "protocol/messages.h"
#include "protocol/peer_link.h"
#include "shared/clock.h"
#include "shared/liveness.h"
#include "shared/result.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {

struct FarmClientOptions {
  std::string endpoint;  // the farm: tcp://host:port
  // CurveZMQ: this client's keys and the farm's public key.
  std::optional<protocol::KeyPair> keys;
  std::string farm_key;
  LivenessOptions liveness;
  std::string client_name;  // who submits, shown by the farm's status
  std::string label;
  std::size_t max_slots = 0;  // 0: no cap
  bool keep_order = false;    // the farm starts the tests as given, not as its history orders
  // Not accepted (or refused) by then: the farm is taken to be unreachable.
  Millis connect_timeout{30000};
  // Coverage (the run's options ask for it): where the merged profiles the farm sends back are
  // written, one file per worker that had any.
  std::filesystem::path profile_dir;
};

// Asks the farm at `endpoint` what it is doing (`testfarm status`).
Result<protocol::FarmStatus> QueryFarmStatus(zmq::context_t& context, const Clock& clock,
                                             const FarmClientOptions& options);
// Asks the farm's run history (`testfarm history|flaky --farm`, `run --farm --rerun-failed`):
// the JSON text of its answer.
Result<std::string> QueryFarmHistory(zmq::context_t& context, const Clock& clock,
                                     const FarmClientOptions& options,
                                     protocol::HistoryQuery query);

class FarmClient {
 public:
  FarmClient(zmq::context_t& context, const Clock& clock, FarmClientOptions options);

  // Runs `tests` on the farm. `shipped[t]`: the files test t needs (nullptr: none). `options`:
  // the run's policy. `signal_fd` (or -1): the first signal stops the run on the farm, a second
  // stops waiting for its cancelled tests.
  RunSummary Run(std::vector<TestSpec> tests, const std::vector<const ArtifactSet*>& shipped,
                 const RunOptions& options, Reporter& reporter, int signal_fd);

  // Why the run did not get to run on the farm (refused, unreachable, lost); empty if it did.
  const std::string& failure() const { return failure_; }

 private:
  enum class Stage { kAsking, kUploading, kAccepting, kRunning, kDone };
  struct Upload {
    std::string sha256;
    std::filesystem::path path;
    uint64_t size = 0;
    uint64_t offset = 0;
    UniqueFd fd;  // open from the first piece to the last
  };

  void OnMessage(protocol::Message& message);
  void OnSignal();
  void Submit();
  void PumpUploads();
  void Fail(const std::string& why);
  void Send(protocol::Message message);

  const Clock& clock_;
  FarmClientOptions options_;
  protocol::PeerLink link_;

  // The run.
  std::vector<TestSpec> tests_;
  std::vector<const ArtifactSet*> shipped_;
  RunOptions run_options_;
  std::optional<TestLedger> ledger_;
  Reporter* reporter_ = nullptr;
  Stage stage_ = Stage::kAsking;
  std::map<std::string, std::filesystem::path> blobs_;  // sha256 -> a file with that content
  std::vector<Upload> uploads_;
  bool interrupted_ = false;
  std::optional<SteadyTime> first_signal_at_;
  std::optional<SteadyTime> give_up_at_;
  std::string stop_reason_;
  std::string failure_;
  Liveness farm_;
  // What runs now, as the farm last said (for the console's progress line).
  std::size_t running_ = 0;
  std::string longest_;
  SteadyTime longest_since_{};
  SteadyTime deadline_;  // kAsking .. kAccepting: connect_timeout
  // Coverage profiles as they come, each written to its file.
  ProfilePieces profiles_;
};

}  // namespace testfarm::coordinator
