#include "shared/terminal_text.h"

#include <cstdint>

#include "shared/utf8.h"

namespace testfarm {

namespace {

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
    Utf8Char decoded = DecodeUtf8(text, i);
    std::size_t length = decoded.valid ? decoded.length : 0;
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
