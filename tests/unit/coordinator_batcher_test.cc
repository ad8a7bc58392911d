#include <gtest/gtest.h>

#include <numeric>

#include "coordinator/batcher.h"

namespace testfarm::coordinator {
namespace {

std::vector<std::size_t> Range(std::size_t from, std::size_t count) {
  std::vector<std::size_t> v(count);
  std::iota(v.begin(), v.end(), from);
  return v;
}

TEST(Batcher, UnknownDurationsStartSmall) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  b.AddSuite(Range(0, 100));
  auto first = b.Next(2);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, Range(0, 4));
}

TEST(Batcher, KnownDurationsSizeBatchesToTheTarget) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  std::size_t suite = b.AddSuite(Range(0, 1000));
  for (int i = 0; i < 4; ++i) b.RecordDuration(suite, Millis(10));  // mean 10 ms
  EXPECT_EQ(b.BatchSize(suite, 2), 20u);                            // 200 ms / 10 ms
  auto batch = b.Next(2);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->size(), 20u);
}

TEST(Batcher, InstantCasesGetTheLargestBatchButEverySlotGetsWork) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  std::size_t suite = b.AddSuite(Range(0, 100));
  b.RecordDuration(suite, Millis(0));
  EXPECT_EQ(b.BatchSize(suite, 4), 25u) << "100 cases over 4 slots: no batch above a quarter";
  b.RecordDuration(suite, Millis(0));
  Batcher wide(BatcherOptions{Millis(200), 4, 256});
  std::size_t big = wide.AddSuite(Range(0, 5000));
  wide.RecordDuration(big, Millis(0));
  EXPECT_EQ(wide.BatchSize(big, 2), 256u) << "capped at max_batch";
}

TEST(Batcher, SlowCasesRunOnePerBatch) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  std::size_t suite = b.AddSuite(Range(0, 10));
  b.RecordDuration(suite, Millis(5000));
  EXPECT_EQ(b.BatchSize(suite, 1), 1u);
}

TEST(Batcher, SuitesTakeTurnsAndEveryCaseIsHandedOutOnce) {
  Batcher b(BatcherOptions{Millis(200), 3, 256});
  b.AddSuite(Range(0, 5));
  b.AddSuite(Range(100, 5));
  std::vector<std::size_t> seen;
  std::vector<std::size_t> first_of_each;
  while (auto batch = b.Next(1)) {
    first_of_each.push_back(batch->front());
    seen.insert(seen.end(), batch->begin(), batch->end());
  }
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(first_of_each, (std::vector<std::size_t>{0, 100, 3, 103}));
  std::sort(seen.begin(), seen.end());
  std::vector<std::size_t> expected = Range(0, 5);
  auto more = Range(100, 5);
  expected.insert(expected.end(), more.begin(), more.end());
  EXPECT_EQ(seen, expected);
}

TEST(Batcher, ABatchNeverOutgrowsWhatItsFilterCanName) {
  BatcherOptions options{Millis(200), 4, 256};
  options.max_filter_bytes = 100;
  Batcher b(options);
  std::size_t suite = b.AddSuite(Range(0, 50), std::vector<std::size_t>(50, 29));  // 30 bytes each
  b.RecordDuration(suite, Millis(0));
  auto batch = b.Next(1);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->size(), 3u) << "3 x 30 bytes fit in 100, 4 do not";
  Batcher huge(options);
  huge.AddSuite({7}, {500});
  EXPECT_EQ(huge.Next(1)->size(), 1u) << "a single case always goes, whatever its name";
}

TEST(Batcher, ClearReturnsWhatWasNeverHandedOut) {
  Batcher b(BatcherOptions{});
  b.AddSuite(Range(0, 10));
  auto first = b.Next(1);
  ASSERT_TRUE(first);
  auto dropped = b.Clear();
  EXPECT_EQ(dropped.size(), 10u - first->size());
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.Next(1));
  EXPECT_EQ(b.SuiteOf(3), 0u);
  EXPECT_FALSE(b.SuiteOf(42));
}

}  // namespace
}  // namespace testfarm::coordinator
