#include "shared/terminal_text.h"

#include <cstdint>

namespace testfarm {

namespace {

// The length of the valid UTF-8 sequence starting at text[i] (1 to 4), or 0 if it is not one:
// truncated, overlong, a surrogate or beyond U+10FFFF.
std::size_t Utf8SequenceLength(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<uint8_t>(text[k]); };
  uint8_t lead = byte(i);
  std::size_t length = 0;
  uint8_t low = 0x80;   // the range of the second byte, narrowed where overlongs and
  uint8_t high = 0xbf;  // surrogates would otherwise slip through
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) return 0;
  }
  return length;
}

void AppendEscaped(std::string* out, uint8_t byte) {
  static const char kHex[] = "0123456789abcdef";
  out->append("\\x");
  out->push_back(kHex[byte >> 4]);
  out->push_back(kHex[byte & 0xf]);
}

}  // namespace

std::string EscapeForTerminal(std::string_view text, Newlines newlines) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    auto byte = static_cast<uint8_t>(text[i]);
    if (byte < 0x80) {
      bool control = byte < 0x20 || byte == 0x7f;
      bool kept = byte == '\t' || (byte == '\n' && newlines == Newlines::kKeep);
      if (control && !kept) {
        AppendEscaped(&out, byte);
      } else {
        out.push_back(static_cast<char>(byte));
      }
      ++i;
      continue;
    }
    std::size_t length = Utf8SequenceLength(text, i);
    // U+0080..U+009F are the C1 controls (0xc2 0x80..0x9f): some terminals act on them.
    bool c1 = length == 2 && byte == 0xc2 && static_cast<uint8_t>(text[i + 1]) <= 0x9f;
    if (length == 0 || c1) {
      std::size_t count = c1 ? 2 : 1;
      for (std::size_t k = 0; k < count; ++k)
        AppendEscaped(&out, static_cast<uint8_t>(text[i + k]));
      i += count;
      continue;
    }
    out.append(text.substr(i, length));
    i += length;
  }
  return out;
}

}  // namespace testfarm
