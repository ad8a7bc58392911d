#include "coordinator/output_rules.h"

#include <regex.h>

#include <cctype>
#include <utility>

namespace testfarm::coordinator {

namespace {

// CTest's syntax as POSIX extended: outside brackets '{' and '}' are quoted, and a backslash
// before a letter or digit is dropped (CTest reads "\d" as 'd'; glibc would read "\w" as a
// word character). Inside [...] a backslash is an ordinary character in both.
std::string ToPosix(const std::string& pattern) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      char next = pattern[++i];
      if (std::isalnum(static_cast<unsigned char>(next)) == 0) out += '\\';
      out += next;
    } else if (c == '{' || c == '}') {
      out += '\\';
      out += c;
    } else if (c == '[') {
      // Copy the bracket expression whole: "[", an optional "^", a leading "]" that is a member,
      // then up to the closing "]".
      std::size_t end = i + 1;
      if (end < pattern.size() && pattern[end] == '^') ++end;
      if (end < pattern.size() && pattern[end] == ']') ++end;
      while (end < pattern.size() && pattern[end] != ']') ++end;
      if (end >= pattern.size()) {  // unterminated: let regcomp say so
        out += pattern.substr(i);
        break;
      }
      out += pattern.substr(i, end - i + 1);
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}

// A compiled expression, freed with its owner.
class Compiled {
 public:
  explicit Compiled(const std::string& pattern) {
    status_ = ::regcomp(&regex_, ToPosix(pattern).c_str(), REG_EXTENDED | REG_NOSUB);
  }
  ~Compiled() {
    if (status_ == 0) ::regfree(&regex_);
  }
  Compiled(const Compiled&) = delete;
  Compiled& operator=(const Compiled&) = delete;

  bool ok() const { return status_ == 0; }
  std::string Error() const {
    char message[256] = {};
    ::regerror(status_, &regex_, message, sizeof message);
    return message;
  }
  // Searches the whole text, NUL bytes included (REG_STARTEND).
  bool Search(const std::string& text) const {
    regmatch_t range[1];
    range[0].rm_so = 0;
    range[0].rm_eo = static_cast<regoff_t>(text.size());
    return ::regexec(&regex_, text.c_str(), 1, range, REG_STARTEND) == 0;
  }

 private:
  regex_t regex_{};
  int status_ = -1;
};

}  // namespace

Status CheckPattern(const std::string& pattern) {
  Compiled compiled(pattern);
  if (!compiled.ok())
    return Error{"not a regular expression: '" + pattern + "' (" + compiled.Error() + ")"};
  return Ok{};
}

std::optional<std::string> FirstMatch(const std::vector<std::string>& patterns,
                                      const std::string& text) {
  for (const std::string& pattern : patterns) {
    Compiled compiled(pattern);
    if (compiled.ok() && compiled.Search(text)) return pattern;
  }
  return std::nullopt;
}

}  // namespace testfarm::coordinator
