#include "coordinator/latency_histogram.h"

#include <algorithm>

namespace testfarm::coordinator {

namespace {
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
}  // namespace

const std::array<LatencyHistogram::Bound, LatencyHistogram::kBounds>& LatencyHistogram::Bounds() {
  static const std::array<Bound, kBounds> bounds = {{
      {milliseconds(1), "0.001"},
      {microseconds(2500), "0.0025"},
      {milliseconds(5), "0.005"},
      {milliseconds(10), "0.01"},
      {milliseconds(25), "0.025"},
      {milliseconds(50), "0.05"},
      {milliseconds(100), "0.1"},
      {milliseconds(250), "0.25"},
      {milliseconds(500), "0.5"},
      {seconds(1), "1"},
      {milliseconds(2500), "2.5"},
      {seconds(5), "5"},
      {seconds(10), "10"},
  }};
  return bounds;
}

void LatencyHistogram::Observe(std::chrono::nanoseconds latency) {
  latency = std::max(latency, std::chrono::nanoseconds(0));
  const auto& bounds = Bounds();
  auto at = std::lower_bound(
      bounds.begin(), bounds.end(), latency,
      [](const Bound& bound, std::chrono::nanoseconds value) { return bound.at < value; });
  ++buckets_[static_cast<std::size_t>(at - bounds.begin())];
  ++count_;
  sum_ += latency;
}

void LatencyHistogram::Add(const LatencyHistogram& other) {
  for (std::size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ += other.sum_;
}

uint64_t LatencyHistogram::CumulativeCount(std::size_t i) const {
  uint64_t total = 0;
  for (std::size_t b = 0; b <= std::min(i, kBounds); ++b) total += buckets_[b];
  return total;
}

}  // namespace testfarm::coordinator
