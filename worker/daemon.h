#pragma once
// `testfarm worker`: a long-lived worker. It connects to a coordinator, serves its run, and
// connects again for the next one; when the coordinator is gone or silent it kills its running
// tests and retries with exponential backoff (1 s up to 32 s). Each failed attempt says why in
// words; --connect-timeout bounds how long it keeps trying to (re)join.
#include <optional>
#include <zmq.hpp>

#include "shared/clock.h"
#include "worker/worker_node.h"

namespace testfarm::worker {

struct DaemonOptions {
  WorkerNodeOptions node;  // node.stop_fd also ends the daemon
  bool once = false;       // exit after one run
  // Give up (exit 1, saying why) when no coordinator could be joined for this long, counted from
  // the start and again from each lost coordinator or finished run. Unset: never give up.
  std::optional<Millis> connect_timeout;
};

// Returns the process exit code: 0 when stopped by a signal or after --once's run, 1 on a
// socket failure or when --connect-timeout passed without joining.
int RunDaemon(zmq::context_t& context, const Clock& clock, const DaemonOptions& options);

}  // namespace testfarm::worker
