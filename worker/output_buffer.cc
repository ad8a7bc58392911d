#include "worker/output_buffer.h"

#include <algorithm>

namespace testfarm::worker {

OutputBuffer::OutputBuffer(std::size_t cap) : head_cap_(cap / 2), tail_cap_(cap - cap / 2) {}

void OutputBuffer::Append(std::string_view data) {
  total_ += data.size();
  if (head_.size() < head_cap_) {
    std::size_t n = std::min(head_cap_ - head_.size(), data.size());
    head_.append(data.substr(0, n));
    data.remove_prefix(n);
  }
  AppendTail(data);
}

void OutputBuffer::AppendTail(std::string_view data) {
  if (tail_cap_ == 0 || data.empty()) return;
  if (data.size() >= tail_cap_) {  // the new data alone fills the tail
    tail_.assign(data.substr(data.size() - tail_cap_));
    tail_start_ = 0;
    tail_filled_ = tail_cap_;
    return;
  }
  if (tail_filled_ + data.size() <= tail_cap_) {  // still filling: a plain string
    tail_.append(data);
    tail_filled_ += data.size();
    return;
  }
  if (tail_filled_ < tail_cap_) {  // becomes a ring now: linearize at full size
    tail_.append(data);
    tail_.erase(0, tail_.size() - tail_cap_);
    tail_start_ = 0;
    tail_filled_ = tail_cap_;
    return;
  }
  // Full ring: overwrite the oldest bytes, wrapping once at most (data.size() < tail_cap_).
  std::size_t first = std::min(data.size(), tail_cap_ - tail_start_);
  tail_.replace(tail_start_, first, data.substr(0, first));
  tail_.replace(0, data.size() - first, data.substr(first));
  tail_start_ = (tail_start_ + data.size()) % tail_cap_;
}

CapturedOutput OutputBuffer::Take() const {
  CapturedOutput out;
  out.total = total_;
  out.dropped = dropped();
  out.text.reserve(head_.size() + tail_filled_ + (out.dropped > 0 ? 48 : 0));
  out.text.append(head_);
  if (out.dropped > 0) out.text += DroppedMarker(out.dropped);
  out.text.append(tail_, tail_start_, std::string::npos);
  out.text.append(tail_, 0, tail_start_);
  return out;
}

std::string OutputBuffer::DroppedMarker(uint64_t dropped) {
  return "\n[testfarm: " + std::to_string(dropped) + " bytes dropped]\n";
}

}  // namespace testfarm::worker
