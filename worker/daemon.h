#pragma once
// `testfarm worker`: a long-lived worker. It connects to a coordinator, serves its run, and
// connects again for the next one; when the coordinator is gone or silent it kills its running
// tests and retries with exponential backoff (1 s up to 32 s).
#include <zmq.hpp>

#include "shared/clock.h"
#include "worker/worker_node.h"

namespace testfarm::worker {

struct DaemonOptions {
  WorkerNodeOptions node;  // node.stop_fd also ends the daemon
  bool once = false;       // exit after one run
};

// Returns the process exit code: 0 when stopped by a signal or after --once's run, 1 on a
// socket failure.
int RunDaemon(zmq::context_t& context, const Clock& clock, const DaemonOptions& options);

}  // namespace testfarm::worker
