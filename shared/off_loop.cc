#include "shared/off_loop.h"

#include <sys/eventfd.h>

#include <cerrno>
#include <cstdint>
#include <exception>
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
    Done done;
    try {
      done = work();
    } catch (...) {
      // Thrown where it would have been had the work run on the loop: at the loop's boundary.
      done = [error = std::current_exception()] { std::rethrow_exception(error); };
    }
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
  // One at a time: a Done that throws leaves the others queued (and the fd readable).
  std::size_t ran = 0;
  while (true) {
    Done next;
    {
      std::lock_guard lock(mutex_);
      if (done_.empty()) {
        uint64_t count = 0;
        while (::read(event_.get(), &count, sizeof count) < 0 && errno == EINTR) {
        }
        return ran;
      }
      next = std::move(done_.front());
      done_.pop_front();
    }
    --outstanding_;
    ++ran;
    if (next) next();
  }
}

}  // namespace testfarm
