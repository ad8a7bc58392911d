#pragma once
// Summing LLVM raw profiles of one binary without llvm-profdata. Every process of the same build
// writes a raw profile with the same layout (header, data records, names) and its own counter
// values, so merging N of them is adding N counter arrays: microseconds, where llvm-profdata
// spends milliseconds parsing each file. A process whose executable and shared libraries are
// instrumented writes one profile per module into its file, end to end: each is summed with its
// own. A profile that does not fit (another binary, value-profile data, a raw format other than
// version 8, a damaged file) is refused, and the caller merges it with llvm-profdata, which also
// names what is wrong with it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace testfarm::worker {

class RawProfileSum {
 public:
  // Where one module's profile lies in the file: offsets of its header, data records, counters
  // and names; the number of counters and the names' size.
  struct Module {
    std::size_t begin = 0, data = 0, counters = 0, count = 0, names = 0, names_size = 0;
    friend bool operator==(const Module&, const Module&) = default;
  };
  using Layout = std::vector<Module>;

  // Adds `profile`'s counters if it has the layout of the first profile added (any valid one
  // when empty). False: not added, untouched.
  bool Add(std::string_view profile);
  // The first profile added, with every added profile's counters summed (saturating): a valid
  // raw profile llvm-profdata reads like any other. Empty if nothing was added.
  const std::string& profile() const { return sum_; }
  uint64_t count() const { return count_; }
  // What identifies a layout: profiles with equal keys may be summed. Empty: not summable.
  static std::string LayoutKey(std::string_view profile);

 private:
  static std::optional<Layout> Parse(std::string_view profile);
  static std::optional<Module> ParseModule(std::string_view p, std::size_t at, std::size_t* end);
  // Whether `profile` (laid out as `layout`) has the layout of the sum: compared in place.
  bool SameLayout(std::string_view profile, const Layout& layout) const;

  std::string sum_;
  Layout layout_;  // of sum_
  uint64_t count_ = 0;
};

}  // namespace testfarm::worker
