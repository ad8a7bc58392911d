#include "shared/utf8.h"

namespace testfarm {

Utf8Char DecodeUtf8(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return {1, lead, true};
  std::size_t continuation = 0;
  char32_t code_point = 0;
  unsigned char low = 0x80;   // the range of the next byte, narrowed where overlongs, surrogates
  unsigned char high = 0xBF;  // and code points beyond U+10FFFF would otherwise slip through
  if (lead >= 0xC2 && lead <= 0xDF) {
    continuation = 1;
    code_point = lead & 0x1Fu;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    continuation = 2;
    code_point = lead & 0x0Fu;
    if (lead == 0xE0) low = 0xA0;   // overlong
    if (lead == 0xED) high = 0x9F;  // UTF-16 surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    continuation = 3;
    code_point = lead & 0x07u;
    if (lead == 0xF0) low = 0x90;   // overlong
    if (lead == 0xF4) high = 0x8F;  // above U+10FFFF
  } else {
    return {1, 0, false};  // a continuation byte, C0/C1 (overlong) or F5..FF
  }
  for (std::size_t k = 1; k <= continuation; ++k) {
    if (i + k >= text.size()) return {k, 0, false};
    const unsigned char c = byte(i + k);
    if (c < low || c > high) return {k, 0, false};
    low = 0x80;
    high = 0xBF;
    code_point = (code_point << 6) | (c & 0x3Fu);
  }
  return {continuation + 1, code_point, true};
}

}  // namespace testfarm
