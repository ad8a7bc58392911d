#pragma once
// Capped capture of one output stream: keeps the first cap/2 bytes (the head, where a test says
// what it is) and the last cap - cap/2 bytes (the tail, where it says how it failed), and counts
// the rest. Reading never stops because storage is full; only keeping does.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "worker/subprocess_pool.h"

namespace testfarm::worker {

class OutputBuffer {
 public:
  explicit OutputBuffer(std::size_t cap);

  void Append(std::string_view data);

  uint64_t total() const { return total_; }
  uint64_t dropped() const { return total_ - head_.size() - tail_filled_; }

  // Head, then (if anything was dropped) a marker line, then tail.
  CapturedOutput Take() const;

  // "\n[testfarm: 9437184 bytes dropped]\n"
  static std::string DroppedMarker(uint64_t dropped);

 private:
  void AppendTail(std::string_view data);

  std::size_t head_cap_;
  std::size_t tail_cap_;
  std::string head_;
  std::string tail_;  // ring of tail_cap_ bytes once full; tail_start_ is the oldest byte
  std::size_t tail_start_ = 0;
  std::size_t tail_filled_ = 0;
  uint64_t total_ = 0;
};

}  // namespace testfarm::worker
