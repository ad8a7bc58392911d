#pragma once
// Decoding UTF-8, once for every place that must tell valid text from bytes: JUnit's XML, the
// JSON read back from gtest, the console's escaping.
#include <cstddef>
#include <string_view>

namespace testfarm {

struct Utf8Char {
  std::size_t length;   // bytes consumed; for an invalid sequence its maximal valid prefix (>= 1)
  char32_t code_point;  // 0 when invalid
  bool valid;           // false: truncated, overlong, a surrogate, beyond U+10FFFF, a stray byte
};

// Decodes the sequence at text[i] (i < text.size()). An invalid sequence consumes its lead byte
// and the continuation bytes that were still acceptable ("maximal subpart", as the Unicode
// standard recommends), so the byte that broke it is decoded afresh.
Utf8Char DecodeUtf8(std::string_view text, std::size_t i);

// The Unicode replacement character U+FFFD, encoded.
inline constexpr std::string_view kUtf8Replacement = "\xEF\xBF\xBD";

}  // namespace testfarm
