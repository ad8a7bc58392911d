#include <gtest/gtest.h>

#include "worker/subprocess_pool.h"

namespace testfarm::worker {
namespace {

TEST(DefaultSlotsTest, HalfTheHardwareThreadsBetweenOneAndSixteen) {
  EXPECT_EQ(DefaultSlots(0), 1u);  // unknown hardware_concurrency()
  EXPECT_EQ(DefaultSlots(1), 1u);
  EXPECT_EQ(DefaultSlots(2), 1u);
  EXPECT_EQ(DefaultSlots(3), 1u);
  EXPECT_EQ(DefaultSlots(4), 2u);
  EXPECT_EQ(DefaultSlots(5), 2u);
  EXPECT_EQ(DefaultSlots(32), 16u);
  EXPECT_EQ(DefaultSlots(33), 16u);
  EXPECT_EQ(DefaultSlots(64), 16u);
}

}  // namespace
}  // namespace testfarm::worker
