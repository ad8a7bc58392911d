#pragma once
// Text from tests (names, captured output, failure messages) is shown on a terminal, which acts
// on control characters: an ESC sequence can clear the screen or retitle the window, a NUL cuts a
// C string short, a stray CR overwrites the line. Console output passes such text through
// EscapeForTerminal first; reports (JUnit, JSON) keep their own escaping.
#include <string>
#include <string_view>

namespace testfarm {

enum class Newlines {
  kKeep,    // multi-line text (captured output): '\n' stays a line break
  kEscape,  // one line (a name, a reason): '\n' is shown as \x0a too
};

// Control characters (C0 except '\t' and, with kKeep, '\n'; DEL; C1 as U+0080..U+009F) and bytes
// that are not valid UTF-8 are shown as visible escapes, one per byte: "\x1b", "\x00", "\xc2\x9b".
// Everything else, including valid multi-byte UTF-8 and backslashes, is unchanged. The result
// never contains a NUL.
std::string EscapeForTerminal(std::string_view text, Newlines newlines = Newlines::kEscape);

}  // namespace testfarm
