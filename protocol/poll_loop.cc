#include "protocol/poll_loop.h"

#include <algorithm>
#include <utility>

#include "protocol/wire.h"

namespace testfarm::protocol {

void PollLoop::WatchSocket(void* socket, std::function<short()> events,
                           std::function<void(short)> on_ready) {
  Source source;
  source.kind = Source::Kind::kSocket;
  source.socket = socket;
  source.events = std::move(events);
  source.on_socket = std::move(on_ready);
  sources_.push_back(std::move(source));
}

void PollLoop::WatchFd(int fd, std::function<void()> on_ready) {
  if (fd < 0) return;
  Source source;
  source.kind = Source::Kind::kFd;
  source.fd = fd;
  source.on_fd = std::move(on_ready);
  sources_.push_back(std::move(source));
}

void PollLoop::WatchFds(std::function<void(std::vector<int>*)> collect,
                        std::function<void(int)> on_ready) {
  Source source;
  source.kind = Source::Kind::kFds;
  source.collect = std::move(collect);
  source.on_fds = std::move(on_ready);
  sources_.push_back(std::move(source));
}

void PollLoop::WakeBy(std::function<std::optional<SteadyTime>()> deadline) {
  deadlines_.push_back(std::move(deadline));
}

long PollLoop::TimeoutMs() const {
  std::optional<SteadyTime> next;
  for (const auto& deadline : deadlines_) {
    std::optional<SteadyTime> at = deadline();
    if (at && (!next || *at < *next)) next = at;
  }
  return next ? MillisUntil(*next, clock_.Now()) : -1;
}

int PollLoop::Turn() {
  items_.clear();
  owners_.clear();
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    Source& source = sources_[i];
    switch (source.kind) {
      case Source::Kind::kSocket:
        if (short events = source.events(); events != 0) {
          items_.push_back({source.socket, 0, events, 0});
          owners_.push_back(i);
        }
        break;
      case Source::Kind::kFd:
        items_.push_back({nullptr, source.fd, ZMQ_POLLIN, 0});
        owners_.push_back(i);
        break;
      case Source::Kind::kFds:
        scratch_fds_.clear();
        source.collect(&scratch_fds_);
        for (int fd : scratch_fds_) {
          items_.push_back({nullptr, fd, ZMQ_POLLIN, 0});
          owners_.push_back(i);
        }
        break;
    }
  }
  Poll(items_.data(), items_.size(), TimeoutMs());
  int ready = 0;
  std::size_t last_owner = sources_.size();
  end_turn_ = false;
  for (std::size_t k = 0; k < items_.size() && !end_turn_; ++k) {
    const zmq_pollitem_t& item = items_[k];
    if (item.revents == 0) continue;
    Source& source = sources_[owners_[k]];
    if (owners_[k] != last_owner) ++ready;
    last_owner = owners_[k];
    switch (source.kind) {
      case Source::Kind::kSocket:
        source.on_socket(item.revents);
        break;
      case Source::Kind::kFd:
        source.on_fd();
        break;
      case Source::Kind::kFds:
        source.on_fds(item.fd);
        break;
    }
  }
  return ready;
}

}  // namespace testfarm::protocol
