#include <gtest/gtest.h>

#include "shared/exit_state.h"

namespace testfarm {
namespace {

using Kind = ExitState::Kind;

TEST(ExitState, DescribeEachKind) {
  EXPECT_EQ(ExitState::Exited(0).Describe(), "exit 0");
  EXPECT_EQ(ExitState::Exited(3).Describe(), "exit 3");
  EXPECT_EQ(ExitState::Signaled(11, true).Describe(), "SIGSEGV (core dumped)");
  EXPECT_EQ(ExitState::Signaled(9, false).Describe(), "SIGKILL");
  EXPECT_EQ(ExitState::TimedOut("").Describe(), "timed out");
  EXPECT_EQ(ExitState::TimedOut("SIGKILL after 2s grace").Describe(),
            "timed out, SIGKILL after 2s grace");
  EXPECT_EQ(ExitState::SpawnFailed(2, "no such file").Describe(), "failed to start: no such file");
  EXPECT_EQ(ExitState::Leaked(0, "pid 42").Describe(), "exit 0, leaked: pid 42");
  EXPECT_EQ(ExitState::Cancelled("").Describe(), "cancelled");
  EXPECT_EQ(ExitState::Cancelled("run aborted").Describe(), "cancelled, run aborted");
}

TEST(ExitState, SignalIsNeverAnExitCode) {
  ExitState segv = ExitState::Signaled(11, true);
  EXPECT_EQ(segv.kind(), Kind::kSignaled);
  EXPECT_EQ(segv.signal(), 11);
  EXPECT_EQ(segv.exit_code(), 0);
  EXPECT_TRUE(segv.core_dumped());
  EXPECT_FALSE(segv.passed());
  EXPECT_EQ(ExitState::Exited(11).signal(), 0);
}

TEST(ExitState, AccessorsFollowTheKind) {
  EXPECT_TRUE(ExitState::Exited(0).passed());
  EXPECT_FALSE(ExitState::Exited(1).passed());
  EXPECT_FALSE(ExitState::Leaked(0, "x").passed());  // clean exit, but it leaked
  EXPECT_EQ(ExitState::Leaked(4, "x").exit_code(), 4);
  EXPECT_EQ(ExitState::SpawnFailed(13, "denied").spawn_errno(), 13);
  EXPECT_EQ(ExitState::SpawnFailed(13, "denied").exit_code(), 0);
  EXPECT_EQ(ExitState::TimedOut("x").raw_value(), 0);
}

TEST(ExitState, FromPartsRebuildsEveryFactoryValue) {
  const ExitState states[] = {ExitState::Exited(2),      ExitState::Signaled(6, true),
                              ExitState::TimedOut("t"),  ExitState::SpawnFailed(2, "s"),
                              ExitState::Leaked(1, "l"), ExitState::Cancelled("c")};
  for (const ExitState& s : states) {
    EXPECT_EQ(ExitState::FromParts(s.kind(), s.raw_value(), s.core_dumped(), s.detail()), s)
        << s.Describe();
  }
  EXPECT_NE(ExitState::Exited(1), ExitState::Leaked(1, ""));
}

TEST(ExitStateKindName, RoundTripsEveryKind) {
  const Kind kinds[] = {Kind::kExited,      Kind::kSignaled, Kind::kTimedOut,
                        Kind::kSpawnFailed, Kind::kLeaked,   Kind::kCancelled};
  for (Kind kind : kinds) {
    Kind back = Kind::kExited;
    ASSERT_TRUE(KindFromName(KindName(kind), &back)) << KindName(kind);
    EXPECT_EQ(back, kind);
  }
  EXPECT_STREQ(KindName(Kind::kTimedOut), "timed_out");
  EXPECT_STREQ(KindName(Kind::kSpawnFailed), "spawn_failed");
}

TEST(ExitStateKindName, UnknownNamesLeaveTheOutputAlone) {
  Kind out = Kind::kLeaked;
  EXPECT_FALSE(KindFromName("", &out));
  EXPECT_FALSE(KindFromName("Exited", &out));
  EXPECT_FALSE(KindFromName("unknown", &out));
  EXPECT_EQ(out, Kind::kLeaked);
}

TEST(SignalName, KnownAndUnknownNumbers) {
  EXPECT_EQ(SignalName(11), "SIGSEGV");
  EXPECT_EQ(SignalName(9), "SIGKILL");
  EXPECT_EQ(SignalName(15), "SIGTERM");
  EXPECT_EQ(SignalName(6), "SIGABRT");
  EXPECT_EQ(SignalName(77), "signal 77");
  EXPECT_EQ(SignalName(0), "signal 0");
  EXPECT_EQ(SignalName(-1), "signal -1");
}

}  // namespace
}  // namespace testfarm
