#pragma once
// CTest's PASS_REGULAR_EXPRESSION, FAIL_REGULAR_EXPRESSION and SKIP_REGULAR_EXPRESSION: regular
// expressions a test's output is held against. The syntax is CTest's (that of
// cmsys::RegularExpression: ^ $ . [...] * + ? ( | ) and \ quoting the next character), run as
// POSIX extended expressions (regcomp: no recursion, no backtracking blow-up on megabytes of
// output) after translating what the two read differently: '{' and '}' are plain characters,
// and "\n" is the letter n, never GNU's \w, \s, \b and friends.
#include <optional>
#include <string>
#include <vector>

#include "shared/result.h"

namespace testfarm::coordinator {

struct OutputRules {
  std::vector<std::string> pass;  // if any: one must match, and the exit code no longer counts
  std::vector<std::string> fail;  // a match fails the test, whatever its exit code
  std::vector<std::string> skip;  // a match skips the test (if it exited)
  bool empty() const { return pass.empty() && fail.empty() && skip.empty(); }
  friend bool operator==(const OutputRules&, const OutputRules&) = default;
};

// An error says why `pattern` is not a regular expression.
Status CheckPattern(const std::string& pattern);

// The first of `patterns` found in `text` (anywhere: a search, not a whole match); nullopt when
// none is, or a pattern does not compile (CheckPattern refuses those up front).
std::optional<std::string> FirstMatch(const std::vector<std::string>& patterns,
                                      const std::string& text);

}  // namespace testfarm::coordinator
