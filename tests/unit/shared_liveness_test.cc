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
