#include "protocol/bad_frames.h"

namespace testfarm::protocol {

namespace {

std::string More(unsigned long count) {
  return std::to_string(count) + " more bad frame" + (count == 1 ? "" : "s");
}

}  // namespace

std::optional<std::string> BadFrameLog::Note(const std::string& peer, const std::string& who,
                                             const std::string& what, SteadyTime now) {
  auto it = peers_.find(peer);
  if (it == peers_.end()) {
    std::string key = peer;
    std::string shown = who;
    // Many peers (reconnecting garbage, a port scanner): forget those with nothing untold whose
    // interval is over (forgetting them costs no extra line), and past the bound, count the
    // newcomers together.
    if (peers_.size() >= max_peers_) {
      std::erase_if(peers_, [&](const auto& entry) {
        return entry.second.untold == 0 && now - entry.second.last_line >= interval_;
      });
    }
    if (peers_.size() >= max_peers_) {
      key.clear();
      shown = "other peers";
    }
    auto [position, fresh] = peers_.try_emplace(key, Peer{shown, now, 0});
    if (fresh) return "bad frame from " + shown + " dropped: " + what;
    it = position;
  }
  Peer& state = it->second;
  if (now - state.last_line < interval_) {
    ++state.untold;
    return std::nullopt;
  }
  std::string line = "bad frame from " + state.who + " dropped: " + what;
  if (state.untold > 0) line += " (and " + More(state.untold) + " since the last such line)";
  state.untold = 0;
  state.last_line = now;
  return line;
}

std::vector<std::string> BadFrameLog::Flush() {
  std::vector<std::string> lines;
  for (auto& [key, peer] : peers_) {
    if (peer.untold == 0) continue;
    lines.push_back(More(peer.untold) + " from " + peer.who + " dropped");
    peer.untold = 0;
  }
  return lines;
}

}  // namespace testfarm::protocol
