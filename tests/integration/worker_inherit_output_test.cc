// LaunchSpec::inherit_output (`testfarm run --no-capture`): the test writes to the pool owner's
// own stdout and stderr, nothing is captured, and the job is done when its process exits.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "shared/file_io.h"
#include "shared/unique_fd.h"
#include "tests/support/temp_dir.h"
#include "worker/subprocess_pool.h"

namespace testfarm::worker {
namespace {

using namespace std::chrono_literals;

// Points fd `target` at `path` until destroyed.
class Redirect {
 public:
  Redirect(int target, const std::string& path)
      : target_(target), saved_(::fcntl(target, F_DUPFD_CLOEXEC, 10)) {
    UniqueFd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    ::dup2(file.get(), target_);
  }
  ~Redirect() { ::dup2(saved_.get(), target_); }
  Redirect(const Redirect&) = delete;
  Redirect& operator=(const Redirect&) = delete;

 private:
  int target_;
  UniqueFd saved_;
};

// Drives the pool as the node does (poll on its fds until its next deadline) until one job has
// finished or 10 s have passed.
std::vector<FinishedJob> RunOne(SubprocessPool& pool, const Clock& clock) {
  SteadyTime give_up = clock.Now() + 10s;
  std::vector<FinishedJob> done;
  while (done.empty() && clock.Now() < give_up) {
    std::vector<int> fds;
    pool.CollectFds(&fds);
    std::vector<pollfd> items;
    for (int fd : fds) items.push_back(pollfd{fd, POLLIN, 0});
    SteadyTime wake = give_up;
    if (auto deadline = pool.NextDeadline()) wake = std::min(wake, *deadline);
    int n = ::poll(items.data(), items.size(), static_cast<int>(MillisUntil(wake, clock.Now())));
    for (const pollfd& item : items) {
      if (n > 0 && item.revents != 0) pool.OnFdReady(item.fd);
    }
    pool.OnTimers();
    done = pool.TakeFinished();
  }
  return done;
}

TEST(InheritOutput, TheTestWritesToOurStreamsAndNothingIsCaptured) {
  test::TempDir dir;
  std::string out_path = (dir.path() / "out").string();
  std::string err_path = (dir.path() / "err").string();
  SteadyClock clock;
  SubprocessPool pool(clock, PoolOptions{});
  LaunchSpec spec;
  spec.argv = {std::string(TESTFARM_FIXTURE_DIR) + "/tf_fail"};
  spec.inherit_output = true;
  std::vector<FinishedJob> done;
  {
    std::fflush(stdout);
    Redirect out(STDOUT_FILENO, out_path);
    Redirect err(STDERR_FILENO, err_path);
    pool.Start(1, spec);
    done = RunOne(pool, clock);
  }
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].state.Describe(), ExitState::Exited(1).Describe());
  EXPECT_EQ(done[0].out.text, "");
  EXPECT_EQ(done[0].err.text, "");
  auto out = ReadWholeFile(out_path, 1 << 20);
  auto err = ReadWholeFile(err_path, 1 << 20);
  ASSERT_TRUE(out.ok() && err.ok());
  EXPECT_EQ(*out, "tf_fail: expected 2, got 3\n");
  EXPECT_EQ(*err, "tf_fail: assertion failed\n");
}

}  // namespace
}  // namespace testfarm::worker
