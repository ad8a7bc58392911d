#pragma once
// Why a coordinator cannot be reached, in words. ZeroMQ retries a failed connect silently, so a
// worker that never hears from its coordinator tries once itself, with a plain socket, and says
// what happened ("connection refused", "no answer", "cannot resolve the name").
#include <string>

#include "shared/clock.h"

namespace testfarm::worker {

// Connects to a tcp:// or ipc:// endpoint (waiting at most `bound`) and closes the connection at
// once. Returns what stands in the way, or, if the connection succeeds, that something listens
// there ("something listens at HOST:PORT"), so a silent coordinator is a different problem.
std::string ProbeEndpoint(const std::string& endpoint, Millis bound);

}  // namespace testfarm::worker
