// The launcher on its own: fds, process group, exit observation without reaping, RAII.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "worker/spawn.h"

namespace testfarm::worker {
namespace {

std::string Fixture(const std::string& name) {
  return std::string(TESTFARM_FIXTURE_DIR) + "/" + name;
}

bool ProcessGone(pid_t pid) {
  return ::kill(pid, 0) != 0 && errno == ESRCH;
}

// Bounded wait for the pidfd to report the exit.
bool ExitsWithin(const ChildProcess& child, int ms) {
  pollfd item{child.pidfd(), POLLIN, 0};
  int n;
  do {
    n = ::poll(&item, 1, ms);
  } while (n < 0 && errno == EINTR);
  return n == 1;
}

SpawnedChild MustSpawn(const std::string& fixture) {
  SpawnResult result = Spawn(SpawnRequest{{Fixture(fixture)}, {}, ""});
  if (auto* error = std::get_if<SpawnError>(&result)) {
    ADD_FAILURE() << error->detail;
    std::abort();
  }
  return std::move(std::get<SpawnedChild>(result));
}

TEST(SpawnTest, ParentEndsAreCloseOnExecAndNonBlocking) {
  SpawnedChild child = MustSpawn("tf_hang");
  for (int fd : {child.process.pidfd(), child.stdout_read.get(), child.stderr_read.get()}) {
    ASSERT_GE(fd, 0);
    EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0) << fd;
  }
  for (int fd : {child.stdout_read.get(), child.stderr_read.get()}) {
    EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0) << fd;
  }
}

TEST(SpawnTest, ChildLeadsItsOwnProcessGroup) {
  SpawnedChild child = MustSpawn("tf_hang");
  pid_t pid = child.process.pid();
  EXPECT_EQ(::getpgid(pid), pid);
  EXPECT_NE(::getpgid(pid), ::getpgid(0));
}

TEST(SpawnTest, ExitIsSeenWithoutReaping) {
  SpawnedChild child = MustSpawn("tf_hang");
  pid_t pid = child.process.pid();
  EXPECT_EQ(child.process.PeekExit(), std::nullopt);  // still running
  ASSERT_TRUE(child.process.SignalGroup(SIGTERM));
  ASSERT_TRUE(ExitsWithin(child.process, 10000));
  EXPECT_EQ(child.process.PeekExit(), ExitState::Signaled(SIGTERM, false));
  EXPECT_EQ(child.process.PeekExit(), ExitState::Signaled(SIGTERM, false));  // still a zombie
  EXPECT_EQ(::kill(pid, 0), 0);  // the zombie keeps the pid (and the group id) reserved
  child.process.KillGroupAndReap();
  EXPECT_TRUE(child.process.reaped());
  EXPECT_TRUE(ProcessGone(pid));
  EXPECT_FALSE(child.process.SignalGroup(SIGTERM));  // never signals a reaped group
}

TEST(SpawnTest, ExitCodeIsReported) {
  SpawnResult result = Spawn(SpawnRequest{{Fixture("tf_fail"), "7"}, {}, ""});
  ASSERT_TRUE(std::holds_alternative<SpawnedChild>(result));
  ChildProcess& child = std::get<SpawnedChild>(result).process;
  ASSERT_TRUE(ExitsWithin(child, 10000));
  EXPECT_EQ(child.PeekExit(), ExitState::Exited(7));
}

TEST(SpawnTest, DestructorKillsAndReaps) {
  pid_t pid;
  {
    SpawnedChild child = MustSpawn("tf_ignore_term");
    pid = child.process.pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(SpawnTest, MoveTransfersOwnership) {
  SpawnedChild child = MustSpawn("tf_hang");
  pid_t pid = child.process.pid();
  ChildProcess owner = std::move(child.process);
  EXPECT_EQ(owner.pid(), pid);
  { ChildProcess moved_from = std::move(child.process); }  // owns nothing: kills nothing
  EXPECT_EQ(::kill(pid, 0), 0);
  owner.KillGroupAndReap();
  EXPECT_TRUE(ProcessGone(pid));
}

TEST(SpawnTest, MissingProgramIsAnErrorValue) {
  std::string path = Fixture("tf_missing");
  SpawnResult result = Spawn(SpawnRequest{{path}, {}, ""});
  ASSERT_TRUE(std::holds_alternative<SpawnError>(result));
  const SpawnError& error = std::get<SpawnError>(result);
  EXPECT_EQ(error.error_number, ENOENT);
  EXPECT_EQ(error.detail, path + ": No such file or directory");
}

TEST(SpawnTest, NoPathSearch) {
  SpawnResult result = Spawn(SpawnRequest{{"true"}, {}, "/"});  // /true does not exist
  ASSERT_TRUE(std::holds_alternative<SpawnError>(result));
  EXPECT_EQ(std::get<SpawnError>(result).error_number, ENOENT);
}

TEST(SpawnTest, ErrnoText) {
  EXPECT_EQ(ErrnoText(ENOENT), "No such file or directory");
  EXPECT_EQ(ErrnoText(EACCES), "Permission denied");
}

}  // namespace
}  // namespace testfarm::worker
