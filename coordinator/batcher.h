#pragma once
// Adaptive batching (--isolation batch): many cases of one GoogleTest binary per process,
// sized so a batch's expected time stays near a target. Pure: it only sees case counts and the
// durations reported so far.
//
// A suite whose case durations are unknown starts with small batches; as cases report, the
// suite's mean case time sets the size (target / mean). Batches are also capped so that every
// slot gets one (a few large batches would leave slots idle at the end).
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "shared/clock.h"

namespace testfarm::coordinator {

// A batch run as one of gtest's own shards (GTEST_TOTAL_SHARDS / GTEST_SHARD_INDEX) of the
// binary's runnable cases, less `excluded` (handed out before, named by a negative filter).
// Unlike a --gtest_filter naming each case, which costs gtest cases x patterns to match, a shard
// costs it one pass over its cases.
struct GtestShard {
  unsigned index = 0;
  unsigned count = 1;
  std::vector<std::size_t> excluded;  // test indices
};

struct Batch {
  std::vector<std::size_t> tests;
  bool sharded = false;  // else the cases are named by a filter
  GtestShard shard;
};

struct BatcherOptions {
  Millis target{200};
  std::size_t first_batch = 4;  // while a suite's case time is unknown
  std::size_t max_batch = 256;
  // A batch's --gtest_filter is one argv string, which Linux caps at 128 KiB.
  std::size_t max_filter_bytes = 100 * 1024;
  // At most this many cases in a shard: its result (a JSON report of every case) is digested
  // by the coordinator's loop in one go, which must stay well within the workers' liveness
  // bound (50,000 cases hold it 0.3-0.45 s on two cores, read as a stream of events; read into
  // a document tree they held it 2.5-3.5 s).
  std::size_t max_shard_cases = 50000;
  // And at most this much report, by an estimate of each case's share (kCaseReportBytes plus
  // twice its name; gtest 1.12 writes 350 bytes for a case named "All/Many.Case/12345"): well
  // within the worker's cap on a report file (32 MiB), the rest left for failure messages. A
  // shard whose report is over the cap has every case run again alone.
  std::size_t max_shard_report_bytes = 20u << 20;
  static constexpr std::size_t kCaseReportBytes = 300;
};

// The jobs that run again the cases a batch could not vouch for (it crashed, hung, or its
// report is missing): alone when they are at most `alone_up_to`, else split in two — or in as
// many parts as filters of `max_filter_bytes` need to name them all — each a batch that splits
// again if it cannot vouch either. One crash among 50,000 cases of a shard costs a few dozen
// processes, not 50,000 (each of which, for a binary of 200,000 cases, takes 0.65 s to start).
// `name_bytes[i]`: the length of tests[i]'s name in a filter.
std::vector<std::vector<std::size_t>> RerunParts(const std::vector<std::size_t>& tests,
                                                 const std::vector<std::size_t>& name_bytes,
                                                 std::size_t max_filter_bytes,
                                                 std::size_t alone_up_to = 8);

class Batcher {
 public:
  explicit Batcher(BatcherOptions options) : options_(options) {}

  // Adds a suite's cases (test indices, in order) with the length of each case's name (what it
  // adds to the filter), and the expected time of a case if an earlier run knows it (it counts
  // as kKnownCases observed cases, so its first batches are sized by it). Returns the suite's id.
  // `whole`: the cases are every runnable case of the binary, in its listing order. Once the
  // suite's case time is known, what is left of a whole suite goes out as gtest's shards: as
  // many as the slots, or as the target time needs, each at most max_shard_cases.
  std::size_t AddSuite(std::vector<std::size_t> tests, std::vector<std::size_t> name_bytes = {},
                       std::optional<Millis> expected_case = std::nullopt, bool whole = false);
  static constexpr std::size_t kKnownCases = 8;
  // A case of `suite` took `duration`.
  void RecordDuration(std::size_t suite, Millis duration);

  // The next batch for `total_slots` slots, or nullopt when no case is left. Suites are served
  // in turn, so that batches of different binaries run side by side.
  std::optional<Batch> Next(unsigned total_slots);
  // The size the next batch of `suite` would have.
  std::size_t BatchSize(std::size_t suite, unsigned total_slots) const;

  bool empty() const;
  // Drops every case not yet handed out (the run stopped); returns them.
  std::vector<std::size_t> Clear();
  // The suite a test index belongs to.
  std::optional<std::size_t> SuiteOf(std::size_t test) const;

 private:
  struct Suite {
    std::deque<std::size_t> pending;
    std::vector<std::size_t> all;
    std::map<std::size_t, std::size_t> name_bytes;  // test -> length of its name
    Millis observed{0};
    std::size_t observed_cases = 0;
    bool whole = false;
    std::vector<std::size_t> handed_out;  // of a whole suite, before it was sharded
    std::deque<Batch> shards;             // made, not yet handed out
  };
  // Splits what is left of a whole suite into shards; if the cases handed out already are too
  // many to name in a negative filter, the suite is no longer taken as whole instead.
  void MakeShards(Suite& suite, unsigned total_slots);
  BatcherOptions options_;
  std::vector<Suite> suites_;
  std::size_t next_suite_ = 0;
};

}  // namespace testfarm::coordinator
