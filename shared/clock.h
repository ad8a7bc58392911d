#pragma once
// Time is injected: everything that decides (scheduler, pool policy, liveness) takes a Clock,
// so tests drive timeouts with a FakeClock instead of sleeping.
#include <chrono>

namespace testfarm {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime Now() const = 0;
};

class SteadyClock final : public Clock {
 public:
  SteadyTime Now() const override { return std::chrono::steady_clock::now(); }
};

class FakeClock final : public Clock {
 public:
  SteadyTime Now() const override { return now_; }
  void Advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  SteadyTime now_{std::chrono::hours(1)};
};

// Milliseconds from `now` until `deadline`, clamped at zero; for poll timeouts.
inline long MillisUntil(SteadyTime deadline, SteadyTime now) {
  if (deadline <= now) return 0;
  auto ms = std::chrono::ceil<Millis>(deadline - now).count();
  return static_cast<long>(ms);
}

}  // namespace testfarm
