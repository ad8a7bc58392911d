#include "coordinator/batcher.h"

#include <algorithm>

namespace testfarm::coordinator {

std::vector<std::vector<std::size_t>> RerunParts(const std::vector<std::size_t>& tests,
                                                 const std::vector<std::size_t>& name_bytes,
                                                 std::size_t max_filter_bytes,
                                                 std::size_t alone_up_to) {
  std::vector<std::vector<std::size_t>> parts;
  if (tests.size() <= std::max<std::size_t>(1, alone_up_to)) {
    for (std::size_t t : tests) parts.push_back({t});
    return parts;
  }
  const std::size_t half = (tests.size() + 1) / 2;
  std::vector<std::size_t> part;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < tests.size(); ++i) {
    const std::size_t size = (i < name_bytes.size() ? name_bytes[i] : 0) + 1;  // and its ':'
    if (!part.empty() && (part.size() == half || bytes + size > max_filter_bytes)) {
      parts.push_back(std::move(part));
      part.clear();
      bytes = 0;
    }
    part.push_back(tests[i]);
    bytes += size;
  }
  parts.push_back(std::move(part));
  return parts;
}

std::size_t Batcher::AddSuite(std::vector<std::size_t> tests, std::vector<std::size_t> name_bytes,
                              std::optional<Millis> expected_case, bool whole) {
  Suite suite;
  suite.whole = whole;
  if (expected_case) {
    suite.observed = *expected_case * static_cast<int64_t>(kKnownCases);
    suite.observed_cases = kKnownCases;
  }
  for (std::size_t i = 0; i < name_bytes.size() && i < tests.size(); ++i) {
    suite.name_bytes[tests[i]] = name_bytes[i];
  }
  suite.pending.assign(tests.begin(), tests.end());
  suite.all = std::move(tests);
  suites_.push_back(std::move(suite));
  return suites_.size() - 1;
}

void Batcher::RecordDuration(std::size_t suite, Millis duration) {
  if (suite >= suites_.size()) return;
  suites_[suite].observed += duration;
  ++suites_[suite].observed_cases;
}

std::size_t Batcher::BatchSize(std::size_t index, unsigned total_slots) const {
  const Suite& suite = suites_[index];
  std::size_t size = options_.first_batch;
  if (suite.observed_cases > 0) {
    // Mean case time in microseconds-ish resolution: gtest reports whole milliseconds, so a
    // suite of sub-millisecond cases has mean 0 and gets the largest batches.
    auto mean =
        static_cast<double>(suite.observed.count()) / static_cast<double>(suite.observed_cases);
    double fit = mean <= 0 ? static_cast<double>(options_.max_batch)
                           : static_cast<double>(options_.target.count()) / mean;
    size = static_cast<std::size_t>(std::max(1.0, fit));
  }
  size = std::min(size, options_.max_batch);
  // Leave work for every slot: no batch takes more than an even share of what is left.
  std::size_t remaining = 0;
  for (const Suite& s : suites_) remaining += s.pending.size();
  unsigned slots = std::max(1u, total_slots);
  std::size_t share = (remaining + slots - 1) / slots;
  size = std::min(size, std::max<std::size_t>(1, share));
  return std::min(size, suite.pending.size());
}

void Batcher::MakeShards(Suite& suite, unsigned total_slots) {
  std::size_t excluded_bytes = 0;
  for (std::size_t t : suite.handed_out) {
    auto it = suite.name_bytes.find(t);
    excluded_bytes += (it == suite.name_bytes.end() ? 0 : it->second) + 1;
  }
  if (excluded_bytes > options_.max_filter_bytes) {
    suite.whole = false;
    return;
  }
  const std::size_t left = suite.pending.size();
  const double mean =
      static_cast<double>(suite.observed.count()) / static_cast<double>(suite.observed_cases);
  std::size_t count = std::max<std::size_t>(1, total_slots);
  if (mean > 0) {
    const double needed =
        static_cast<double>(left) * mean / static_cast<double>(options_.target.count());
    count = std::max(count, static_cast<std::size_t>(needed) + 1);
  }
  count = std::max(count, (left + options_.max_shard_cases - 1) / options_.max_shard_cases);
  std::size_t report_bytes = 0;
  for (std::size_t t : suite.pending) {
    auto it = suite.name_bytes.find(t);
    report_bytes +=
        BatcherOptions::kCaseReportBytes + 2 * (it == suite.name_bytes.end() ? 0 : it->second);
  }
  const std::size_t report_budget = std::max<std::size_t>(1, options_.max_shard_report_bytes);
  count = std::max(count, (report_bytes + report_budget - 1) / report_budget);
  count = std::min(count, left);
  std::vector<Batch> shards(count);
  for (std::size_t k = 0; k < left; ++k) shards[k % count].tests.push_back(suite.pending[k]);
  for (std::size_t i = 0; i < count; ++i) {
    shards[i].sharded = true;
    shards[i].shard =
        GtestShard{static_cast<unsigned>(i), static_cast<unsigned>(count), suite.handed_out};
    suite.shards.push_back(std::move(shards[i]));
  }
  suite.pending.clear();
}

std::optional<Batch> Batcher::Next(unsigned total_slots) {
  for (std::size_t tried = 0; tried < suites_.size(); ++tried) {
    std::size_t index = (next_suite_ + tried) % suites_.size();
    Suite& suite = suites_[index];
    if (suite.whole && suite.shards.empty() && suite.observed_cases > 0 &&
        suite.pending.size() > 1) {
      MakeShards(suite, total_slots);
    }
    if (!suite.shards.empty()) {
      Batch shard = std::move(suite.shards.front());
      suite.shards.pop_front();
      next_suite_ = (index + 1) % suites_.size();
      return shard;
    }
    if (suite.pending.empty()) continue;
    std::size_t size = BatchSize(index, total_slots);
    // Never more than the filter can name: each case adds its name and a ':'.
    std::size_t bytes = 0;
    for (std::size_t i = 0; i < size; ++i) {
      auto it = suite.name_bytes.find(suite.pending[i]);
      bytes += (it == suite.name_bytes.end() ? 0 : it->second) + 1;
      if (i > 0 && bytes > options_.max_filter_bytes) {
        size = i;
        break;
      }
    }
    std::vector<std::size_t> batch(suite.pending.begin(),
                                   suite.pending.begin() + static_cast<std::ptrdiff_t>(size));
    suite.pending.erase(suite.pending.begin(),
                        suite.pending.begin() + static_cast<std::ptrdiff_t>(size));
    if (suite.whole) suite.handed_out.insert(suite.handed_out.end(), batch.begin(), batch.end());
    next_suite_ = (index + 1) % suites_.size();
    return Batch{std::move(batch), false, {}};
  }
  return std::nullopt;
}

bool Batcher::empty() const {
  return std::all_of(suites_.begin(), suites_.end(),
                     [](const Suite& s) { return s.pending.empty() && s.shards.empty(); });
}

std::vector<std::size_t> Batcher::Clear() {
  std::vector<std::size_t> dropped;
  for (Suite& suite : suites_) {
    dropped.insert(dropped.end(), suite.pending.begin(), suite.pending.end());
    suite.pending.clear();
    for (const Batch& shard : suite.shards) {
      dropped.insert(dropped.end(), shard.tests.begin(), shard.tests.end());
    }
    suite.shards.clear();
  }
  return dropped;
}

std::optional<std::size_t> Batcher::SuiteOf(std::size_t test) const {
  for (std::size_t i = 0; i < suites_.size(); ++i) {
    if (std::find(suites_[i].all.begin(), suites_[i].all.end(), test) != suites_[i].all.end())
      return i;
  }
  return std::nullopt;
}

}  // namespace testfarm::coordinator
