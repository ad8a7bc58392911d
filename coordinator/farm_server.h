#pragma once
// `testfarm serve`: a ROUTER socket around the farm service. It binds, authenticates workers and
// clients (CurveZMQ with a ZAP handler over both allow-lists), keeps uploaded blobs in its
// content-addressed store and serves them to workers, and hands everything else to the
// FarmService, driven by one protocol::PollLoop.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include <zmq.hpp>

#include "coordinator/artifacts.h"
#include "coordinator/farm_service.h"
#include "coordinator/history_store.h"
#include "coordinator/zap_handler.h"
#include "protocol/curve.h"
#include "protocol/peer_link.h"
#include "protocol/poll_loop.h"
#include "shared/blob_cache.h"
#include "shared/clock.h"
#include "shared/off_loop.h"
#include "shared/result.h"

namespace testfarm::coordinator {

struct FarmServerOptions {
  FarmServiceOptions service;
  // CurveZMQ: only keys in `allowed` (workers' and clients') may connect.
  std::optional<protocol::KeyPair> keys;
  std::vector<protocol::AllowedKey> allowed;
  BlobCacheOptions store;  // the blobs clients upload, shared by every run
  // The run history every run of the farm is recorded in and ordered by; empty: none.
  std::string history;
};

class FarmServer {
 public:
  // Opens the store; the error names the directory and why it cannot be used.
  static Result<std::unique_ptr<FarmServer>> Create(zmq::context_t& context, const Clock& clock,
                                                    FarmServerOptions options);
  ~FarmServer();

  Result<std::string> Bind(const std::string& endpoint);
  // Serves until `signal_fd` fires: the first signal stops taking runs and stops the running
  // ones (their clients hear every test's end), then the workers are told goodbye; a second
  // signal, a second or more later, ends at once.
  void Serve(int signal_fd);

 private:
  class Store;
  class History;
  FarmServer(zmq::context_t& context, const Clock& clock, FarmServerOptions options,
             BlobCache cache, std::unique_ptr<HistoryStore> history);
  void Watch(protocol::PollLoop* loop, int signal_fd);
  void OnSignal();
  void CheckHandshakes();
  void Flush();
  void ServeFetch(const std::string& peer, const protocol::Fetch& fetch);

  std::optional<ZapHandler> zap_;  // before link_: it must exist before anyone connects
  protocol::PeerLink link_;
  const Clock& clock_;
  FarmServerOptions options_;
  std::unique_ptr<Store> store_;
  ServedFiles served_;                // blobs of the store being fetched, kept open between chunks
  std::unique_ptr<History> history_;  // null: the farm keeps no history
  FarmService service_;
  // Upload verification, off the loop. Last: it goes first, before the store and service its
  // work and Dones use.
  OffLoop off_loop_;
  std::optional<SteadyTime> first_signal_at_;
  bool leave_now_ = false;
};

}  // namespace testfarm::coordinator
