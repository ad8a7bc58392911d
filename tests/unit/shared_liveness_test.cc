#include <gtest/gtest.h>

#include "shared/liveness.h"

namespace testfarm {
namespace {

using std::chrono::milliseconds;

TEST(Liveness, HeartbeatsAreDueAnIntervalAfterTheLastMessageSent) {
  FakeClock clock;
  Liveness l({milliseconds(1000), 3}, clock.Now());
  EXPECT_FALSE(l.ShouldSendHeartbeat(clock.Now()));
  clock.Advance(milliseconds(999));
  EXPECT_FALSE(l.ShouldSendHeartbeat(clock.Now()));
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(l.ShouldSendHeartbeat(clock.Now()));
  l.Sent(clock.Now());
  EXPECT_FALSE(l.ShouldSendHeartbeat(clock.Now()));
  EXPECT_EQ(l.NextDeadline(), clock.Now() + milliseconds(1000));
}

TEST(Liveness, APeerSilentForLivenessIntervalsIsDead) {
  FakeClock clock;
  Liveness l({milliseconds(1000), 3}, clock.Now());
  clock.Advance(milliseconds(2999));
  EXPECT_FALSE(l.Dead(clock.Now()));
  l.Heard(clock.Now());
  clock.Advance(milliseconds(2999));
  EXPECT_FALSE(l.Dead(clock.Now())) << "hearing from it restarts the count";
  clock.Advance(milliseconds(1));
  EXPECT_TRUE(l.Dead(clock.Now()));
}

TEST(Backoff, DoublesUpToTheCapAndResets) {
  Backoff b;
  std::vector<long long> seen;
  for (int i = 0; i < 8; ++i) seen.push_back(b.Next().count());
  EXPECT_EQ(seen, (std::vector<long long>{1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000}));
  b.Reset();
  EXPECT_EQ(b.Next().count(), 1000);
}

}  // namespace
}  // namespace testfarm

namespace testfarm {
namespace {

TEST(SuspensionGuard, AGapOfMoreThanTwoIntervalsIsOursNotThePeers) {
  FakeClock clock;
  SuspensionGuard guard(LivenessOptions{Millis(1000), 3});
  EXPECT_FALSE(guard.Woke(clock.Now())) << "the first wake has nothing to compare with";
  clock.Advance(Millis(2000));
  EXPECT_FALSE(guard.Woke(clock.Now())) << "two intervals: a late wake, not a suspension";
  clock.Advance(Millis(2001));
  auto gap = guard.Woke(clock.Now());
  ASSERT_TRUE(gap.has_value());
  EXPECT_EQ(*gap, Millis(2001));
  clock.Advance(Millis(500));
  EXPECT_FALSE(guard.Woke(clock.Now())) << "measured from the last wake";
}

}  // namespace
}  // namespace testfarm
