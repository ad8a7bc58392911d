// OffLoop: work runs on its own thread, its Done back on the caller's, in order; the eventfd
// says when; destruction drops work not started and never runs a Done.
#include <gtest/gtest.h>
#include <poll.h>

#include <atomic>
#include <latch>
#include <memory>
#include <thread>
#include <vector>

#include "shared/off_loop.h"

namespace testfarm {
namespace {

// Waits (bounded) for the eventfd and runs what finished, until `want` Dones have run.
void RunUntil(OffLoop& off, std::size_t want, std::size_t* ran) {
  for (int turn = 0; *ran < want && turn < 1000; ++turn) {
    pollfd p{off.fd(), POLLIN, 0};
    ASSERT_GE(::poll(&p, 1, 10000), 1) << "no word from the background thread in 10 s";
    *ran += off.RunFinished();
  }
  ASSERT_EQ(*ran, want);
}

TEST(OffLoop, WorkRunsOnAnotherThreadAndItsDoneOnOursInOrder) {
  OffLoop off;
  const std::thread::id loop = std::this_thread::get_id();
  std::vector<int> order;
  std::atomic<int> elsewhere{0};
  for (int i = 0; i < 50; ++i) {
    off.Post([&, i]() -> OffLoop::Done {
      if (std::this_thread::get_id() != loop) ++elsewhere;
      int squared = i * i;  // the work's result travels in the Done
      return [&, i, squared] {
        EXPECT_EQ(std::this_thread::get_id(), loop);
        EXPECT_EQ(squared, i * i);
        order.push_back(i);
      };
    });
  }
  EXPECT_EQ(off.outstanding(), 50u);
  std::size_t ran = 0;
  RunUntil(off, 50, &ran);
  EXPECT_EQ(elsewhere.load(), 50);
  ASSERT_EQ(order.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(order[i], i);
  EXPECT_EQ(off.outstanding(), 0u);
  // Nothing left: the fd is not readable.
  pollfd p{off.fd(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0);
}

TEST(OffLoop, DestroyingDropsWorkNotStartedAndRunsNoDone) {
  std::latch started(1);
  std::latch dropped(1);
  // Counts `dropped` down when the last copy of the second work (its only owner) is destroyed.
  struct Guard {
    explicit Guard(std::latch* to_count) : latch(to_count) {}
    Guard(const Guard&) = delete;
    ~Guard() { latch->count_down(); }
    std::latch* latch;
  };
  bool done_ran = false;
  {
    OffLoop off;
    off.Post([&]() -> OffLoop::Done {
      started.count_down();
      dropped.wait();  // still running while the destructor drops the queue
      return [&] { done_ran = true; };
    });
    auto guard = std::make_shared<Guard>(&dropped);
    off.Post([guard, &done_ran]() -> OffLoop::Done {
      ADD_FAILURE() << "work posted behind a destroyed OffLoop ran";
      return [&] { done_ran = true; };
    });
    guard.reset();
    started.wait();
  }  // drops the second piece (releasing the first), waits for the first
  EXPECT_FALSE(done_ran);
}

}  // namespace
}  // namespace testfarm
