#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "protocol/bad_frames.h"

namespace testfarm::protocol {
namespace {

TEST(BadFrameLog, TwoThousandGarbageFramesMakeAFewLinesWithTheirCount) {
  FakeClock clock;
  BadFrameLog log(Millis(10000));
  std::vector<std::string> lines;
  for (int i = 0; i < 2000; ++i) {
    if (auto line = log.Note("id1", "worker w1", "kMalformed: not msgpack", clock.Now())) {
      lines.push_back(*line);
    }
    clock.Advance(Millis(10));  // 20 s in all
  }
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "bad frame from worker w1 dropped: kMalformed: not msgpack");
  EXPECT_EQ(lines[1],
            "bad frame from worker w1 dropped: kMalformed: not msgpack (and 999 more bad frames "
            "since the last such line)");
  EXPECT_EQ(log.Flush(), (std::vector<std::string>{"999 more bad frames from worker w1 dropped"}));
  EXPECT_TRUE(log.Flush().empty()) << "told once";
}

TEST(BadFrameLog, EachPeerHasItsOwnBudget) {
  FakeClock clock;
  BadFrameLog log(Millis(10000));
  EXPECT_TRUE(log.Note("a", "worker a", "x", clock.Now()));
  EXPECT_FALSE(log.Note("a", "worker a", "x", clock.Now()));
  EXPECT_TRUE(log.Note("b", "worker b", "x", clock.Now())) << "another peer is said at once";
  EXPECT_EQ(log.Flush(), (std::vector<std::string>{"1 more bad frame from worker a dropped"}));
}

TEST(BadFrameLog, PeersBeyondTheBoundAreCountedTogether) {
  FakeClock clock;
  BadFrameLog log(Millis(10000), 2);
  EXPECT_TRUE(log.Note("a", "a", "x", clock.Now()));
  EXPECT_FALSE(log.Note("a", "a", "x", clock.Now()));  // a has one untold: it is kept
  EXPECT_TRUE(log.Note("b", "b", "x", clock.Now()));
  EXPECT_FALSE(log.Note("b", "b", "x", clock.Now()));
  EXPECT_EQ(*log.Note("c", "c", "x", clock.Now()), "bad frame from other peers dropped: x");
  EXPECT_FALSE(log.Note("d", "d", "x", clock.Now()));
  EXPECT_EQ(log.Flush(), (std::vector<std::string>{"1 more bad frame from other peers dropped",
                                                   "1 more bad frame from a dropped",
                                                   "1 more bad frame from b dropped"}));
  // Told, and the interval over: a new peer finds room again.
  clock.Advance(Millis(10000));
  EXPECT_EQ(*log.Note("e", "e", "x", clock.Now()), "bad frame from e dropped: x");
}

}  // namespace
}  // namespace testfarm::protocol
