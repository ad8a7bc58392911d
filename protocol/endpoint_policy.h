#pragma once
// Where testfarm may listen or connect, and with which keys: the one rule both ends follow.
// Without CurveZMQ keys a socket stays on loopback unless the user says --insecure, because
// whoever can reach it can run commands (on the workers, or on a worker posing as the
// coordinator's peer).
#include <optional>
#include <string>
#include <vector>

#include "protocol/curve.h"
#include "shared/result.h"

namespace testfarm::protocol {

// kListen: a coordinator or farm; kConnect: a worker; kSubmit: a client of a farm.
enum class PortUse { kListen, kConnect, kSubmit };

// "tcp://HOST:PORT" with PORT 1-65535 (a listener may also give '*' or 0 for any free port).
// Returns HOST; errors name `option`.
Result<std::string> TcpHost(const std::string& option, const std::string& endpoint, PortUse use);

// A literal loopback address (127.0.0.0/8, ::1, [::1]) or "localhost". Names are not resolved:
// a name that merely starts with "127." is not loopback, and neither is ZeroMQ's "src;dst" form.
bool IsLoopback(const std::string& host);

// The keys of one end: its own pair and either the peer's public key (a worker: its
// coordinator's) or an allow-list of peers (a coordinator: its workers').
struct Security {
  std::optional<KeyPair> keys;
  std::string peer_key;
  std::vector<AllowedKey> allowed;
};
// Both files or neither; each read and checked before anything starts.
Result<Security> LoadSecurity(const std::string& key_option, const std::string& key,
                              const std::string& peer_option, const std::string& peer,
                              bool peer_is_allow_list);

// `endpoint` (given as `option`) checked and allowed: well-formed, and loopback unless there
// are keys or `insecure`. Returns its host.
Result<std::string> CheckEndpoint(const std::string& option, const std::string& endpoint,
                                  PortUse use, bool has_keys, bool insecure);

}  // namespace testfarm::protocol
