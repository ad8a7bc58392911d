#include "protocol/endpoint_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>

namespace testfarm::protocol {

Result<std::string> TcpHost(const std::string& option, const std::string& endpoint, PortUse use) {
  const std::string scheme = "tcp://";
  std::size_t colon = endpoint.rfind(':');
  if (endpoint.rfind(scheme, 0) != 0 || colon == std::string::npos || colon <= scheme.size() ||
      colon + 1 == endpoint.size()) {
    return Error{option + ": expected tcp://HOST:PORT, got '" + endpoint + "'"};
  }
  std::string port = endpoint.substr(colon + 1);
  if (port == "*" && use == PortUse::kListen)
    return endpoint.substr(scheme.size(), colon - scheme.size());
  bool digits = port.size() <= 5 && port.find_first_not_of("0123456789") == std::string::npos;
  unsigned long number = digits ? std::stoul(port) : 0;
  if (!digits || number > 65535 || (number == 0 && use != PortUse::kListen)) {
    return Error{option + ": '" + port + "' is not a port number (1-65535" +
                 (use == PortUse::kListen ? std::string(", or * or 0 for any free port") : "") +
                 ") in '" + endpoint + "'"};
  }
  return endpoint.substr(scheme.size(), colon - scheme.size());
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  std::string address = host;
  if (address.size() > 2 && address.front() == '[' && address.back() == ']') {
    address = address.substr(1, address.size() - 2);
  }
  in_addr v4{};
  if (::inet_pton(AF_INET, address.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return ::inet_pton(AF_INET6, address.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

Result<Security> LoadSecurity(const std::string& key_option, const std::string& key,
                              const std::string& peer_option, const std::string& peer,
                              bool peer_is_allow_list) {
  Security security;
  if (key.empty() && peer.empty()) return security;
  if (key.empty() || peer.empty()) {
    return Error{key_option + " and " + peer_option + " go together: give both or neither"};
  }
  if (!CurveAvailable()) {
    return Error{key_option + ": this libzmq was built without CurveZMQ support"};
  }
  auto keys = ReadSecretKeyFile(key);
  if (!keys) return Error{key_option + ": " + keys.error().message};
  security.keys = std::move(*keys);
  if (peer_is_allow_list) {
    auto allowed = ReadAllowList(peer);
    if (!allowed) return Error{peer_option + ": " + allowed.error().message};
    security.allowed = std::move(*allowed);
  } else {
    auto peer_key = ReadPublicKeyFile(peer);
    if (!peer_key) return Error{peer_option + ": " + peer_key.error().message};
    security.peer_key = std::move(*peer_key);
  }
  return security;
}

Result<std::string> CheckEndpoint(const std::string& option, const std::string& endpoint,
                                  PortUse use, bool has_keys, bool insecure) {
  auto host = TcpHost(option, endpoint, use);
  if (!host || has_keys || insecure || IsLoopback(*host)) return host;
  if (use == PortUse::kListen) {
    return Error{option + " " + endpoint +
                 ": refusing to accept workers from the network without authentication; "
                 "anyone who can connect could run commands on them. Give --key and "
                 "--worker-keys (a farm: and --client-keys; see `testfarm keygen`), bind a "
                 "loopback address, or pass --insecure on a trusted network"};
  }
  if (use == PortUse::kSubmit) {
    return Error{option + " " + endpoint +
                 ": refusing to talk to a farm over the network without authentication; "
                 "anyone who can pose as it would get the uploaded files and could forge the "
                 "results. Give --key and --farm-key, or pass --insecure on a trusted network"};
  }
  return Error{option + " " + endpoint +
               ": refusing to take commands from the network without authentication; "
               "anyone who can pose as the coordinator could run commands here. Give "
               "--key and --coordinator-key, or pass --insecure on a trusted network"};
}

}  // namespace testfarm::protocol
