#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>

#include "worker/group_watchdog.h"

namespace testfarm::worker {
namespace {

TEST(GroupWatchdog, RunsInItsOwnGroupHoldingNoneOfOurFiles) {
  GroupWatchdog& watchdog = GroupWatchdog::Instance();
  ASSERT_GT(watchdog.pid(), 0);
  EXPECT_EQ(::getpgid(watchdog.pid()), watchdog.pid()) << "a terminal's Ctrl-C must not reach it";
  // stdin, stdout and stderr on /dev/null, and its end of the pipe: nothing else (no listening
  // socket, no test's pipe, not our stdout).
  std::set<std::string> fds;
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(watchdog.pid()) + "/fd", ec)) {
    fds.insert(entry.path().filename().string());
  }
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_EQ(fds, (std::set<std::string>{"0", "1", "2", "3"}));
}

TEST(GroupWatchdog, TicketsAreDistinctAndFreedForReuse) {
  GroupWatchdog& watchdog = GroupWatchdog::Instance();
  // Group ids no process can have (above pid_max), so the watchdog could never hit anyone.
  int a = watchdog.Watch(1 << 30);
  int b = watchdog.Watch((1 << 30) + 1);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_NE(a, b);
  watchdog.Forget(a);
  EXPECT_EQ(watchdog.Watch((1 << 30) + 2), a) << "a forgotten entry is used again";
  watchdog.Forget(a);
  watchdog.Forget(b);
  EXPECT_EQ(watchdog.Watch(0), -1) << "not a group";
}

}  // namespace
}  // namespace testfarm::worker
