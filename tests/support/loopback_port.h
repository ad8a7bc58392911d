#pragma once
// Loopback TCP ports for tests: one nothing listens on, and one something does.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace testfarm::test {

// A bound TCP socket on 127.0.0.1 at an ephemeral port. Listening: connections succeed. Not
// listening: connections are refused, and no one else can take the port while this object lives.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listening) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        (listening && ::listen(fd_, 4) != 0) ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  LoopbackSocket(const LoopbackSocket&) = delete;
  LoopbackSocket& operator=(const LoopbackSocket&) = delete;

  int port() const { return port_; }  // 0 if the socket could not be set up

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace testfarm::test
