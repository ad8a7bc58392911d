#include "worker/raw_profile.h"

#include <cstring>
#include <limits>
#include <optional>

namespace testfarm::worker {

namespace {

// The raw format written by LLVM 12 to 16 (INSTR_PROF_RAW_VERSION 8): a header of eleven
// 64-bit fields, the binary ids, DataSize records of 48 bytes, padding, CountersSize 64-bit
// counters, padding, NamesSize bytes of names, padding to 8, then value-profile data (if any).
constexpr uint64_t kMagic = 0xff6c70726f667281ULL;  // "\x81rforpl\xff", 64-bit
constexpr uint64_t kVersion = 8;
constexpr std::size_t kHeaderFields = 11;
constexpr std::size_t kHeaderBytes = kHeaderFields * 8;
constexpr std::size_t kRecordBytes = 48;
enum Field {
  kMagicField,
  kVersionField,
  kBinaryIdsSize,
  kDataSize,
  kPaddingBeforeCounters,
  kCountersSize,
  kPaddingAfterCounters,
  kNamesSize,
  kCountersDelta,
  kNamesDelta,  // the names' address in the process: differs from run to run (ASLR)
  kValueKindLast,
};

uint64_t Load(std::string_view bytes, std::size_t at) {
  uint64_t value = 0;
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}

struct Layout {
  std::size_t data = 0;      // offset of the data records
  std::size_t counters = 0;  // offset of the counters
  std::size_t count = 0;     // number of counters
  std::size_t names = 0;     // offset of the names
  std::size_t names_size = 0;
};

// The sections of a version-8 raw profile with no value-profile data, or nullopt.
std::optional<Layout> Parse(std::string_view p) {
  if (p.size() < kHeaderBytes || Load(p, 0) != kMagic || Load(p, 8) != kVersion) {
    return std::nullopt;
  }
  uint64_t h[kHeaderFields];
  for (std::size_t i = 0; i < kHeaderFields; ++i) h[i] = Load(p, i * 8);
  constexpr uint64_t kLimit = uint64_t{1} << 40;  // far beyond any real profile; no overflow
  for (std::size_t i = kBinaryIdsSize; i <= kNamesSize; ++i) {
    if (h[i] > kLimit) return std::nullopt;
  }
  Layout layout;
  uint64_t at = kHeaderBytes + h[kBinaryIdsSize];
  layout.data = at;
  at += h[kDataSize] * kRecordBytes + h[kPaddingBeforeCounters];
  layout.counters = at;
  layout.count = h[kCountersSize];
  at += h[kCountersSize] * 8 + h[kPaddingAfterCounters];
  layout.names = at;
  layout.names_size = h[kNamesSize];
  at += h[kNamesSize];
  at = (at + 7) / 8 * 8;
  // Exactly the sections: trailing bytes would be value-profile data, which is not summed here.
  if (at != p.size()) return std::nullopt;
  return layout;
}

}  // namespace

std::string RawProfileSum::LayoutKey(std::string_view p) {
  auto layout = Parse(p);
  if (!layout) return {};
  // Everything but the counters and the per-process addresses: the header (without the names'
  // address), the binary ids, each record's name, hash, counter offset and counts, the names.
  std::string key;
  key.reserve(kHeaderBytes + layout->names_size + (layout->counters - layout->data));
  key.append(p.substr(0, kNamesDelta * 8));
  key.append(p.substr((kNamesDelta + 1) * 8, layout->data - (kNamesDelta + 1) * 8));
  for (std::size_t r = layout->data; r + kRecordBytes <= layout->counters; r += kRecordBytes) {
    key.append(p.substr(r, 24));      // NameRef, FuncHash, CounterPtr (relative)
    key.append(p.substr(r + 40, 8));  // NumCounters, NumValueSites
  }
  key.append(p.substr(layout->names, layout->names_size));
  return key;
}

bool RawProfileSum::Add(std::string_view profile) {
  if (sum_.empty()) {
    if (!Parse(profile)) return false;
    sum_.assign(profile);
    key_ = LayoutKey(profile);
    count_ = 1;
    return true;
  }
  if (profile.size() != sum_.size() || LayoutKey(profile) != key_) return false;
  Layout layout = *Parse(sum_);
  for (std::size_t i = 0; i < layout.count; ++i) {
    std::size_t at = layout.counters + i * 8;
    uint64_t a = Load(sum_, at);
    uint64_t b = Load(profile, at);
    uint64_t total =
        a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
    std::memcpy(sum_.data() + at, &total, sizeof total);
  }
  ++count_;
  return true;
}

}  // namespace testfarm::worker
