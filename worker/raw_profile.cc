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

// One module's profile. A process whose executable and shared libraries are all instrumented
// writes one after another into its file: each module has its own profile runtime.
struct Module {
  std::size_t begin = 0;     // offset of its header
  std::size_t data = 0;      // offset of the data records
  std::size_t counters = 0;  // offset of the counters
  std::size_t count = 0;     // number of counters
  std::size_t names = 0;     // offset of the names
  std::size_t names_size = 0;
};
using Layout = std::vector<Module>;

// The module at `at` of a version-8 raw profile, if it is whole and has no value-profile data.
std::optional<Module> ParseModule(std::string_view p, std::size_t at, std::size_t* end) {
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
std::optional<Layout> Parse(std::string_view p) {
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

}  // namespace

std::string RawProfileSum::LayoutKey(std::string_view p) {
  auto layout = Parse(p);
  if (!layout) return {};
  // Everything but the counters and the per-process addresses: for each module the header
  // (without the names' address), the binary ids, each record's name, hash, counter offset and
  // counts, the names.
  std::string key;
  for (const Module& m : *layout) {
    key.append(p.substr(m.begin, kNamesDelta * 8));
    key.append(p.substr(m.begin + (kNamesDelta + 1) * 8, m.data - m.begin - (kNamesDelta + 1) * 8));
    for (std::size_t r = m.data; r + kRecordBytes <= m.counters; r += kRecordBytes) {
      key.append(p.substr(r, 24));      // NameRef, FuncHash, CounterPtr (relative)
      key.append(p.substr(r + 40, 8));  // NumCounters, NumValueSites
    }
    key.append(p.substr(m.names, m.names_size));
  }
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
  const Layout layout = *Parse(sum_);  // valid: checked when the first profile was added
  for (const Module& m : layout) {
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
