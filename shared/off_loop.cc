#include "shared/off_loop.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "shared/errno_text.h"

namespace testfarm {

OffLoop::OffLoop() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  // Without the eventfd nothing could tell the loop: a resource failure at start-up.
  if (!event_) throw std::runtime_error("cannot create an eventfd: " + ErrnoText(errno));
}

OffLoop::~OffLoop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void OffLoop::Post(Work work) {
  ++outstanding_;
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(work));
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  wake_.notify_one();
}

void OffLoop::Loop() {
  while (true) {
    Work work;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    Done done = work();
    // Queued and told under one lock, so the fd is readable exactly while done_ is not empty.
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    done_.push_back(std::move(done));
    const uint64_t one = 1;
    while (::write(event_.get(), &one, sizeof one) < 0 && errno == EINTR) {
    }
  }
}

std::size_t OffLoop::RunFinished() {
  std::deque<Done> done;
  {
    std::lock_guard lock(mutex_);
    uint64_t count = 0;
    while (::read(event_.get(), &count, sizeof count) < 0 && errno == EINTR) {
    }
    done.swap(done_);
  }
  for (Done& next : done) {
    --outstanding_;
    if (next) next();
  }
  return done.size();
}

}  // namespace testfarm
