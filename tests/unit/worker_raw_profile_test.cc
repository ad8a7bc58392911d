#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "worker/raw_profile.h"

namespace testfarm::worker {
namespace {

// A version-8 raw profile: one function with `counters`, laid out as LLVM writes it.
struct Fake {
  uint64_t func_hash = 2;
  uint64_t function_pointer = 0x5555'0000'1000;  // differs between processes (ASLR)
  uint64_t names_delta = 0x5555'0000'9000;       // likewise
  std::vector<uint64_t> counters = {1, 2};
  std::string names = "abc";
  uint16_t value_sites = 0;  // indirect-call sites of the function
  std::string value_data;    // trailing value-profile data, if any

  std::string Bytes() const {
    std::string out;
    auto put = [&](uint64_t v) { out.append(reinterpret_cast<const char*>(&v), 8); };
    const uint64_t header[] = {
        0xff6c70726f667281ULL,      8,           0, 1, 0, counters.size(), 0, names.size(),
        static_cast<uint64_t>(-48), names_delta, 1};
    for (uint64_t v : header) put(v);
    put(1);  // NameRef
    put(func_hash);
    put(static_cast<uint64_t>(-48));  // CounterPtr, relative to the record
    put(function_pointer);
    put(0);  // Values
    uint32_t num_counters = static_cast<uint32_t>(counters.size());
    out.append(reinterpret_cast<const char*>(&num_counters), 4);
    const uint16_t sites[2] = {value_sites, 0};  // NumValueSites per kind
    out.append(reinterpret_cast<const char*>(sites), 4);
    for (uint64_t c : counters) put(c);
    out += names;
    out.append((8 - out.size() % 8) % 8, '\0');
    out += value_data;
    return out;
  }
};

std::vector<uint64_t> CountersOf(const std::string& profile, std::size_t n) {
  std::vector<uint64_t> out(n);
  std::memcpy(out.data(), profile.data() + 88 + 48, n * 8);
  return out;
}

TEST(RawProfileSum, AddsTheCountersOfProfilesOfOneBinaryFromDifferentProcesses) {
  Fake a;
  Fake b;
  b.counters = {10, 20};
  b.function_pointer = 0x7777'0000'1000;
  b.names_delta = 0x7777'0000'9000;
  RawProfileSum sum;
  ASSERT_TRUE(sum.Add(a.Bytes()));
  ASSERT_TRUE(sum.Add(b.Bytes()));
  EXPECT_EQ(sum.count(), 2u);
  EXPECT_EQ(CountersOf(sum.profile(), 2), (std::vector<uint64_t>{11, 22}));
  // Everything else is the first profile's, byte for byte: a valid raw profile.
  Fake expected = a;
  expected.counters = {11, 22};
  EXPECT_EQ(sum.profile(), expected.Bytes());
}

TEST(RawProfileSum, RefusesWhatItCannotSum) {
  Fake a;
  RawProfileSum sum;
  ASSERT_TRUE(sum.Add(a.Bytes()));
  Fake other_build = a;
  other_build.func_hash = 3;
  EXPECT_FALSE(sum.Add(other_build.Bytes())) << "another build of the function";
  Fake other_names = a;
  other_names.names = "abd";
  EXPECT_FALSE(sum.Add(other_names.Bytes())) << "another binary";
  Fake more = a;
  more.counters = {1, 2, 3};
  EXPECT_FALSE(sum.Add(more.Bytes()));
  Fake values = a;
  values.value_data = std::string(16, 'v');
  EXPECT_TRUE(RawProfileSum::LayoutKey(values.Bytes()).empty()) << "value data: llvm-profdata";
  EXPECT_FALSE(sum.Add(values.Bytes()));
  std::string bad_magic = a.Bytes();
  bad_magic[0] = 'x';
  EXPECT_TRUE(RawProfileSum::LayoutKey(bad_magic).empty());
  std::string truncated = a.Bytes().substr(0, 100);
  EXPECT_TRUE(RawProfileSum::LayoutKey(truncated).empty());
  EXPECT_TRUE(RawProfileSum::LayoutKey("").empty());
  RawProfileSum empty;
  EXPECT_FALSE(empty.Add(truncated));
  EXPECT_EQ(sum.count(), 1u);
  EXPECT_EQ(sum.profile(), a.Bytes()) << "refusals leave the sum untouched";
}

TEST(RawProfileSum, SumsEachModuleOfAProcessWithInstrumentedLibraries) {
  // An executable and its shared library each write their profile into the process's file.
  Fake exe;
  Fake lib;
  lib.names = "library_function";
  lib.counters = {5};
  Fake exe2 = exe;
  exe2.counters = {100, 200};
  exe2.names_delta = 0x6666'0000'9000;
  Fake lib2 = lib;
  lib2.counters = {50};
  lib2.function_pointer = 0x6666'0000'1000;
  RawProfileSum sum;
  ASSERT_TRUE(sum.Add(exe.Bytes() + lib.Bytes()));
  ASSERT_TRUE(sum.Add(exe2.Bytes() + lib2.Bytes()));
  Fake exe_sum = exe;
  exe_sum.counters = {101, 202};
  Fake lib_sum = lib;
  lib_sum.counters = {55};
  EXPECT_EQ(sum.profile(), exe_sum.Bytes() + lib_sum.Bytes());
  EXPECT_FALSE(sum.Add(exe.Bytes())) << "the executable's profile alone is another layout";
  EXPECT_FALSE(sum.Add(lib.Bytes() + exe.Bytes())) << "modules in another order";
  EXPECT_TRUE(RawProfileSum::LayoutKey(exe.Bytes() + lib.Bytes().substr(0, 90)).empty())
      << "a truncated second module";
  EXPECT_EQ(sum.count(), 2u);
}

TEST(RawProfileSum, AModuleWithValueSitesIsLeftToLlvmProfdata) {
  Fake exe;
  Fake profiled;
  profiled.value_sites = 1;
  profiled.value_data = std::string(32, '\0');
  EXPECT_TRUE(RawProfileSum::LayoutKey(profiled.Bytes()).empty());
  EXPECT_TRUE(RawProfileSum::LayoutKey(exe.Bytes() + profiled.Bytes()).empty());
  RawProfileSum sum;
  EXPECT_FALSE(sum.Add(profiled.Bytes()));
}

TEST(RawProfileSum, CountersSaturateInsteadOfWrapping) {
  Fake a;
  a.counters = {std::numeric_limits<uint64_t>::max() - 1, 5};
  Fake b;
  b.counters = {7, 5};
  RawProfileSum sum;
  ASSERT_TRUE(sum.Add(a.Bytes()));
  ASSERT_TRUE(sum.Add(b.Bytes()));
  EXPECT_EQ(CountersOf(sum.profile(), 2),
            (std::vector<uint64_t>{std::numeric_limits<uint64_t>::max(), 10}));
}

}  // namespace
}  // namespace testfarm::worker
