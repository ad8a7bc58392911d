#include "worker/connect_probe.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::worker {

namespace {

std::string Describe(int error_number, const std::string& where) {
  switch (error_number) {
    case 0:
      return "something listens at " + where;
    case ECONNREFUSED:
      return "connection refused: nothing listens at " + where;
    case ETIMEDOUT:
      return "no answer from " + where + " (the host is down or a firewall drops the packets)";
    case EHOSTUNREACH:
    case ENETUNREACH:
      return where + " is unreachable (" + ErrnoText(error_number) + ")";
    case ENOENT:
      return "no socket at " + where;
    default:
      return "cannot connect to " + where + ": " + ErrnoText(error_number);
  }
}

// Non-blocking connect, waiting at most `bound` for it to complete. Returns 0 or the errno.
int ConnectWithin(int family, const sockaddr* address, socklen_t length, Millis bound) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return errno;
  if (::connect(fd.get(), address, length) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd item{fd.get(), POLLOUT, 0};
  int ready;
  do {
    ready = ::poll(&item, 1, static_cast<int>(bound.count()));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) return ETIMEDOUT;
  if (ready < 0) return errno;
  int error = 0;
  socklen_t size = sizeof error;
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
  return error;
}

std::string ProbeTcp(const std::string& address, Millis bound) {
  std::size_t colon = address.rfind(':');
  if (colon == std::string::npos) return "no port in tcp://" + address;
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return "cannot resolve " + host + ": " + ::gai_strerror(rc);
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(found, &::freeaddrinfo);
  // The first address that answers decides; otherwise the first address's failure is the one
  // to tell.
  int first_error = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    int error = ConnectWithin(a->ai_family, a->ai_addr, a->ai_addrlen, bound);
    if (error == 0) return Describe(0, address);
    if (first_error < 0) first_error = error;
  }
  return Describe(first_error < 0 ? EADDRNOTAVAIL : first_error, address);
}

std::string ProbeIpc(const std::string& path, Millis bound) {
  sockaddr_un address{};
  if (path.size() >= sizeof address.sun_path) return "ipc path too long: " + path;
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  int error = ConnectWithin(AF_UNIX, reinterpret_cast<const sockaddr*>(&address),
                            static_cast<socklen_t>(sizeof address), bound);
  return Describe(error, "ipc://" + path);
}

}  // namespace

std::string ProbeEndpoint(const std::string& endpoint, Millis bound) {
  if (endpoint.starts_with("tcp://")) return ProbeTcp(endpoint.substr(6), bound);
  if (endpoint.starts_with("ipc://")) return ProbeIpc(endpoint.substr(6), bound);
  return "no answer from " + endpoint;
}

}  // namespace testfarm::worker
