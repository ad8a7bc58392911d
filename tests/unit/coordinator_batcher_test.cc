#include <gtest/gtest.h>

#include <algorithm>
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
  EXPECT_EQ(first->tests, Range(0, 4));
  EXPECT_FALSE(first->sharded);
}

TEST(Batcher, KnownDurationsSizeBatchesToTheTarget) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  std::size_t suite = b.AddSuite(Range(0, 1000));
  for (int i = 0; i < 4; ++i) b.RecordDuration(suite, Millis(10));  // mean 10 ms
  EXPECT_EQ(b.BatchSize(suite, 2), 20u);                            // 200 ms / 10 ms
  auto batch = b.Next(2);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->tests.size(), 20u);
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
    first_of_each.push_back(batch->tests.front());
    seen.insert(seen.end(), batch->tests.begin(), batch->tests.end());
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
  EXPECT_EQ(batch->tests.size(), 3u) << "3 x 30 bytes fit in 100, 4 do not";
  Batcher huge(options);
  huge.AddSuite({7}, {500});
  EXPECT_EQ(huge.Next(1)->tests.size(), 1u) << "a single case always goes, whatever its name";
}

TEST(Batcher, ClearReturnsWhatWasNeverHandedOut) {
  Batcher b(BatcherOptions{});
  b.AddSuite(Range(0, 10));
  auto first = b.Next(1);
  ASSERT_TRUE(first);
  auto dropped = b.Clear();
  EXPECT_EQ(dropped.size(), 10u - first->tests.size());
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(b.Next(1));
  EXPECT_EQ(b.SuiteOf(3), 0u);
  EXPECT_FALSE(b.SuiteOf(42));
}

TEST(Batcher, AWholeBinaryGoesOutAsGtestsShardsOnceItsCaseTimeIsKnown) {
  Batcher b(BatcherOptions{Millis(200), 4, 256});
  std::size_t suite = b.AddSuite(Range(10, 1000), {}, std::nullopt, /*whole=*/true);
  auto learning = b.Next(3);
  ASSERT_TRUE(learning);
  EXPECT_EQ(learning->tests, Range(10, 4)) << "named by a filter while the case time is unknown";
  EXPECT_FALSE(learning->sharded);
  b.RecordDuration(suite, Millis(1));  // 996 cases x 1 ms = 5 targets of 200 ms; 3 slots
  std::vector<Batch> shards;
  while (auto batch = b.Next(3)) shards.push_back(std::move(*batch));
  ASSERT_EQ(shards.size(), 5u);
  std::vector<std::size_t> seen = learning->tests;
  for (std::size_t i = 0; i < shards.size(); ++i) {
    ASSERT_TRUE(shards[i].sharded);
    EXPECT_EQ(shards[i].shard.index, i);
    EXPECT_EQ(shards[i].shard.count, 5u);
    EXPECT_EQ(shards[i].shard.excluded, Range(10, 4)) << "the cases handed out before";
    // gtest's rule: the k-th runnable case left is in shard k mod count.
    for (std::size_t j = 0; j < shards[i].tests.size(); ++j) {
      EXPECT_EQ(shards[i].tests[j], 14 + i + 5 * j);
    }
    seen.insert(seen.end(), shards[i].tests.begin(), shards[i].tests.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, Range(10, 1000)) << "every case once";
  EXPECT_TRUE(b.empty());
}

TEST(Batcher, ShardsAreAsManyAsTheSlotsAndNoneTooBigForItsReport) {
  BatcherOptions options{Millis(200), 4, 256};
  options.max_shard_cases = 300;
  Batcher b(options);
  std::size_t suite = b.AddSuite(Range(0, 1000), {}, Millis(0), /*whole=*/true);
  (void)suite;
  std::vector<Batch> shards;
  while (auto batch = b.Next(2)) shards.push_back(std::move(*batch));
  ASSERT_EQ(shards.size(), 4u) << "instant cases: 2 slots, but at most 300 cases a shard";
  EXPECT_TRUE(shards[0].shard.excluded.empty()) << "known case time: sharded from the start";
  EXPECT_EQ(shards[0].tests.size(), 250u);
}

TEST(Batcher, ShardsOfLongNamedCasesAreSmallerSoTheirReportsStayUnderTheCap) {
  BatcherOptions options{Millis(200), 4, 256};
  options.max_shard_cases = 1000;
  options.max_shard_report_bytes = 100 * (BatcherOptions::kCaseReportBytes + 2 * 50);
  Batcher b(options);
  b.AddSuite(Range(0, 1000), std::vector<std::size_t>(1000, 50), Millis(0), /*whole=*/true);
  std::vector<Batch> shards;
  while (auto batch = b.Next(2)) shards.push_back(std::move(*batch));
  ASSERT_EQ(shards.size(), 10u) << "100 such cases fill a shard's report";
  EXPECT_EQ(shards[0].tests.size(), 100u);
  Batcher short_names(options);
  short_names.AddSuite(Range(0, 1000), std::vector<std::size_t>(1000, 0), Millis(0), true);
  EXPECT_EQ(short_names.Next(2)->shard.count, 8u) << "more of them fit: 1000 x 300 / 40,000";
}

TEST(Batcher, APartOfABinaryOrTooManyCasesHandedOutStayFilterBatches) {
  BatcherOptions options{Millis(200), 4, 256};
  options.max_filter_bytes = 100;
  Batcher b(options);
  std::size_t suite = b.AddSuite(Range(0, 100), std::vector<std::size_t>(100, 29), std::nullopt,
                                 /*whole=*/true);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(b.Next(1));  // 4 x 3 x 30 bytes handed out
  b.RecordDuration(suite, Millis(1));
  auto next = b.Next(1);
  ASSERT_TRUE(next);
  EXPECT_FALSE(next->sharded) << "the negative filter would not fit";
  Batcher part(BatcherOptions{Millis(200), 4, 256});
  part.AddSuite(Range(0, 100), {}, Millis(1));  // not whole
  EXPECT_FALSE(part.Next(1)->sharded);
}

TEST(RerunParts, FewCasesRunAloneManyInHalvesAndNoPartOutgrowsItsFilter) {
  EXPECT_EQ(RerunParts({3, 4}, {5, 5}, 1000), (std::vector<std::vector<std::size_t>>{{3}, {4}}));
  EXPECT_EQ(RerunParts(Range(0, 9), std::vector<std::size_t>(9, 5), 1000),
            (std::vector<std::vector<std::size_t>>{Range(0, 5), Range(5, 4)}))
      << "nine: two batches";
  // 100 names of 9 bytes (10 with the ':') in filters of 100 bytes: ten parts of ten.
  auto parts = RerunParts(Range(0, 100), std::vector<std::size_t>(100, 9), 100);
  ASSERT_EQ(parts.size(), 10u);
  std::vector<std::size_t> all;
  for (const auto& part : parts) {
    EXPECT_EQ(part.size(), 10u);
    all.insert(all.end(), part.begin(), part.end());
  }
  EXPECT_EQ(all, Range(0, 100)) << "every case once, in order";
  EXPECT_EQ(RerunParts({}, {}, 100).size(), 0u);
}

}  // namespace
}  // namespace testfarm::coordinator
