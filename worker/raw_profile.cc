#include "worker/raw_profile.h"

#include <cstring>
#include <limits>
#include <optional>
#include <vector>

namespace testfarm::worker {

namespace {

// The raw format written by LLVM 12 to 16 (INSTR_PROF_RAW_VERSION 8): a header of eleven
// 64-bit fields, the binary ids, DataSize records of 48 bytes, padding, CountersSize 64-bit
// counters, padding, NamesSize bytes of names, padding to 8, then value-profile data (if any).
// A process with several instrumented modules (an executable and its shared libraries) writes
// one such profile per module, end to end, into the same file.
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

// A process whose executable and shared libraries are instrumented writes one profile per
// module, end to end, into its file: each module has its own profile runtime.
using Module = RawProfileSum::Module;
using Layout = RawProfileSum::Layout;

}  // namespace

// The module at `at` of a version-8 raw profile, if it is whole and has no value-profile data.
std::optional<Module> RawProfileSum::ParseModule(std::string_view p, std::size_t at,
                                                 std::size_t* end) {
  if (p.size() - at < kHeaderBytes || Load(p, at) != kMagic || Load(p, at + 8) != kVersion) {
    return std::nullopt;
  }
  uint64_t h[kHeaderFields];
  for (std::size_t i = 0; i < kHeaderFields; ++i) h[i] = Load(p, at + i * 8);
  constexpr uint64_t kLimit = uint64_t{1} << 40;  // far beyond any real profile; no overflow
  for (std::size_t i = kBinaryIdsSize; i <= kNamesSize; ++i) {
    if (h[i] > kLimit) return std::nullopt;
  }
  Module m;
  m.begin = at;
  uint64_t next = at + kHeaderBytes + h[kBinaryIdsSize];
  m.data = next;
  next += h[kDataSize] * kRecordBytes + h[kPaddingBeforeCounters];
  m.counters = next;
  m.count = h[kCountersSize];
  next += h[kCountersSize] * 8 + h[kPaddingAfterCounters];
  m.names = next;
  m.names_size = h[kNamesSize];
  next += h[kNamesSize];
  next = (next + 7) / 8 * 8;
  if (next > p.size()) return std::nullopt;
  // A record with value sites is followed, after the names, by value-profile data: not summed
  // here (clang's -fprofile-instr-generate writes none unless value profiling is asked for).
  for (std::size_t r = m.data; r + kRecordBytes <= m.counters; r += kRecordBytes) {
    if (Load(p, r + 40) >> 32 != 0) return std::nullopt;  // NumValueSites[0..1]
  }
  *end = next;
  return m;
}

// The modules of a raw profile, or nullopt if it is anything but whole modules end to end.
std::optional<Layout> RawProfileSum::Parse(std::string_view p) {
  Layout layout;
  std::size_t at = 0;
  while (at < p.size()) {
    std::size_t end = 0;
    auto m = ParseModule(p, at, &end);
    if (!m) return std::nullopt;
    layout.push_back(*m);
    at = end;
  }
  if (layout.empty()) return std::nullopt;
  return layout;
}

namespace {

// Calls fn(offset, length) for each range of a profile laid out as `layout` that must be equal
// for two profiles to be summed: everything but the counters and the per-process addresses. For
// each module: the header (without the names' address), the binary ids, each record's name,
// hash, counter offset and counts, the names. Stops at the first fn that returns false.
template <typename Fn>
bool ForEachKeyRange(const Layout& layout, Fn fn) {
  for (const Module& m : layout) {
    std::size_t after = m.begin + (kNamesDelta + 1) * 8;
    if (!fn(m.begin, kNamesDelta * 8) || !fn(after, m.data - after)) return false;
    for (std::size_t r = m.data; r + kRecordBytes <= m.counters; r += kRecordBytes) {
      if (!fn(r, 24) || !fn(r + 40, 8)) return false;  // NameRef, FuncHash, CounterPtr; counts
    }
    if (!fn(m.names, m.names_size)) return false;
  }
  return true;
}

}  // namespace

std::string RawProfileSum::LayoutKey(std::string_view p) {
  auto layout = Parse(p);
  if (!layout) return {};
  std::string key;
  ForEachKeyRange(*layout, [&](std::size_t at, std::size_t length) {
    key.append(p.substr(at, length));
    return true;
  });
  return key;
}

bool RawProfileSum::SameLayout(std::string_view p, const Layout& layout) const {
  if (p.size() != sum_.size() || layout != layout_) return false;
  // Compared where they lie: no key is built per profile.
  return ForEachKeyRange(layout, [&](std::size_t at, std::size_t length) {
    return std::memcmp(p.data() + at, sum_.data() + at, length) == 0;
  });
}

bool RawProfileSum::Add(std::string_view profile) {
  std::optional<Layout> layout = Parse(profile);
  if (!layout) return false;
  if (sum_.empty()) {
    sum_.assign(profile);
    layout_ = std::move(*layout);
    count_ = 1;
    return true;
  }
  if (!SameLayout(profile, *layout)) return false;
  for (const Module& m : layout_) {
    for (std::size_t i = 0; i < m.count; ++i) {
      std::size_t at = m.counters + i * 8;
      uint64_t a = Load(sum_, at);
      uint64_t b = Load(profile, at);
      uint64_t total = a > std::numeric_limits<uint64_t>::max() - b
                           ? std::numeric_limits<uint64_t>::max()
                           : a + b;
      std::memcpy(sum_.data() + at, &total, sizeof total);
    }
  }
  ++count_;
  return true;
}

}  // namespace testfarm::worker
