#pragma once
// A latency histogram with fixed buckets, as Prometheus counts one: how many observations fell at
// or below each bound, their count and their sum. Pure and small (a few counters): a run's
// scheduler keeps one, and the farm adds up its runs' (Add) so the total only ever grows.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace testfarm::coordinator {

class LatencyHistogram {
 public:
  struct Bound {
    std::chrono::nanoseconds at;
    const char* le;  // the bound in seconds, as the exposition's `le` label writes it
  };
  // .001 .0025 .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 seconds; beyond them, +Inf.
  static constexpr std::size_t kBounds = 13;
  static const std::array<Bound, kBounds>& Bounds();

  // A negative latency (a clock that went back) counts as 0.
  void Observe(std::chrono::nanoseconds latency);
  void Add(const LatencyHistogram& other);

  // Observations at or below Bounds()[i] (cumulative); i == kBounds: every one (+Inf).
  uint64_t CumulativeCount(std::size_t i) const;
  uint64_t count() const { return count_; }
  std::chrono::nanoseconds sum() const { return sum_; }

  friend bool operator==(const LatencyHistogram&, const LatencyHistogram&) = default;

 private:
  std::array<uint64_t, kBounds + 1> buckets_{};  // not cumulative; the last: beyond every bound
  uint64_t count_ = 0;
  std::chrono::nanoseconds sum_{0};
};

}  // namespace testfarm::coordinator
