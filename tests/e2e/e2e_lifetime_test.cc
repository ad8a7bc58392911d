// Test processes die with the process that started them: `kill -9` of `testfarm run` or of
// `testfarm worker` leaves no test (nor its children) behind.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/e2e/e2e_support.h"
#include "tests/support/child_process.h"

namespace testfarm::test {
namespace {

using namespace std::chrono_literals;

// The FIFO tf_family writes its pids to, read without blocking the test forever.
class FamilyFifo {
 public:
  FamilyFifo() : path_((dir_.path() / "family").string()) {
    if (::mkfifo(path_.c_str(), 0600) == 0) fd_ = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK);
  }
  ~FamilyFifo() {
    if (fd_ >= 0) ::close(fd_);
  }
  FamilyFifo(const FamilyFifo&) = delete;
  FamilyFifo& operator=(const FamilyFifo&) = delete;

  std::string env() const { return "TF_FAMILY_FIFO=" + path_; }

  // The test's pid and its child's, once the test has written them; empty after `deadline`.
  std::vector<pid_t> WaitForPids(std::chrono::milliseconds deadline) {
    std::string text;
    auto until = std::chrono::steady_clock::now() + deadline;
    while (text.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (fd_ < 0 || left.count() <= 0) return {};
      pollfd item{fd_, POLLIN, 0};
      if (::poll(&item, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[64];
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n > 0) text.append(buffer, static_cast<std::size_t>(n));
    }
    int test = 0;
    int child = 0;
    if (std::sscanf(text.c_str(), "%d %d", &test, &child) != 2) return {};
    return {test, child};
  }

 private:
  TempDir dir_;
  std::string path_;
  int fd_ = -1;
};

// True once `pid` has died (or was already gone), waiting on a pidfd for at most `deadline`.
bool DiesWithin(pid_t pid, std::chrono::milliseconds deadline) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0u));
  if (fd < 0) return errno == ESRCH;
  pollfd item{fd, POLLIN, 0};
  int ready = ::poll(&item, 1, static_cast<int>(deadline.count()));
  ::close(fd);
  return ready == 1;
}

// Kills whatever a failed test left behind, so one failure does not leak into the next.
struct KillOnExit {
  std::vector<pid_t> pids;
  ~KillOnExit() {
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
  }
};

// `announcer` prints START (-v) when the worker's `started` arrives, which the worker sends only
// after the test's group is recorded for its watchdog. Waiting for it leaves out the known gap
// (a runner killed between posix_spawn and the record; see group_watchdog.h), which a loaded
// machine can otherwise widen to the whole time the test takes to report its pids.
void ExpectFamilyDiesWithItsRunner(BackgroundChild& runner, FamilyFifo& fifo,
                                   BackgroundChild& announcer) {
  KillOnExit leftovers;
  leftovers.pids = fifo.WaitForPids(60s);
  ASSERT_EQ(leftovers.pids.size(), 2u) << "the test never started; testfarm said: " << runner.out();
  ASSERT_TRUE(announcer.WaitForOutput("START", 60s)) << announcer.out();
  ASSERT_EQ(::kill(runner.pid(), SIGKILL), 0);
  for (pid_t pid : leftovers.pids) {
    EXPECT_TRUE(DiesWithin(pid, 20s)) << "process " << pid << " outlived its runner";
  }
}

TEST(E2ELifetime, KillNineOfRunKillsItsTestsAndTheirChildren) {
  FamilyFifo fifo;
  BackgroundChild run({TESTFARM_BINARY, "run", "-v", Fixture("tf_family")}, {fifo.env()});
  ExpectFamilyDiesWithItsRunner(run, fifo, run);
}

TEST(E2ELifetime, KillNineOfAWorkerKillsItsTestsAndTheirChildren) {
  FamilyFifo fifo;
  std::string endpoint;
  auto coordinator =
      StartCoordinator({"-v", "--local-slots", "0", Fixture("tf_family")}, &endpoint);
  ASSERT_FALSE(endpoint.empty()) << coordinator->out();
  BackgroundChild worker({TESTFARM_BINARY, "worker", "--connect", endpoint, "--once", "--name",
                          "doomed", "--cache-dir", WorkerCacheDir()},
                         {fifo.env()});
  ExpectFamilyDiesWithItsRunner(worker, fifo, *coordinator);
}

}  // namespace
}  // namespace testfarm::test
