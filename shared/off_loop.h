#pragma once
// Work that must not hold an event loop — hashing a multi-gigabyte file, fdatasync, a cache
// eviction's directory scan — runs on one thread of its own, in the order posted. Each piece of
// work returns what to do with its result, and that runs back on the loop's thread: the loop
// watches fd() and calls RunFinished() when it is readable. So the loop's state is only ever
// touched by the loop's thread; the work itself must touch nothing the loop owns.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "shared/unique_fd.h"

namespace testfarm {

class OffLoop {
 public:
  using Done = std::function<void()>;  // runs on the loop's thread
  using Work = std::function<Done()>;  // runs on the background thread

  OffLoop();
  // Waits for the work in progress; work not started is dropped, and no Done runs.
  ~OffLoop();
  OffLoop(const OffLoop&) = delete;
  OffLoop& operator=(const OffLoop&) = delete;

  // Queues `work`; the thread starts with the first post.
  void Post(Work work);
  // Readable while finished work waits for RunFinished (an eventfd).
  int fd() const { return event_.get(); }
  // On the loop's thread: runs the Done of every finished piece of work, in posting order.
  // Returns how many ran. Work that threw has its exception rethrown here.
  std::size_t RunFinished();
  // Posted and not yet through RunFinished.
  std::size_t outstanding() const { return outstanding_; }

 private:
  void Loop();

  UniqueFd event_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Work> queue_;       // guarded by mutex_
  std::deque<Done> done_;        // guarded by mutex_
  bool stopping_ = false;        // guarded by mutex_
  std::size_t outstanding_ = 0;  // the loop's thread only
  std::thread thread_;
};

}  // namespace testfarm
