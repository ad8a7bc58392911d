#pragma once
// Bad frames said in the log at a bounded rate. A peer that sends garbage gets its first bad
// frame logged at once; after that, at most one line per interval, counting the frames dropped in
// silence since — 2000 garbage frames make a handful of lines, not 2000. Pure and clock-injected:
// the caller logs the lines it is given.
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shared/clock.h"

namespace testfarm::protocol {

class BadFrameLog {
 public:
  explicit BadFrameLog(Millis interval = Millis(10000), std::size_t max_peers = 1024)
      : interval_(interval), max_peers_(max_peers) {}

  // A bad frame from the peer keyed `peer` (shown as `who`, e.g. "worker w1") saying `what`:
  // the line to log now, or nullopt to stay quiet.
  std::optional<std::string> Note(const std::string& peer, const std::string& who,
                                  const std::string& what, SteadyTime now);
  // One line per peer with frames dropped but not yet told ("12 more bad frames from worker w1
  // dropped"), for the end of a run or connection; they count as told.
  std::vector<std::string> Flush();

 private:
  struct Peer {
    std::string who;
    SteadyTime last_line;
    unsigned long untold = 0;
  };
  Millis interval_;
  std::size_t max_peers_;
  std::map<std::string, Peer> peers_;
};

}  // namespace testfarm::protocol
