// Checks a few string utilities: splitting, joining and case folding.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "check.h"

static std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> parts(1);
  for (char c : s) {
    if (c == sep)
      parts.emplace_back();
    else
      parts.back() += c;
  }
  return parts;
}

int main() {
  auto parts = Split("a,b,,c", ',');
  CHECK(parts.size() == 4);
  CHECK(parts[2].empty());
  std::string joined;
  for (const auto& p : parts) joined += p;
  CHECK(joined == "abc");
  std::string upper = "testfarm";
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return std::toupper(c); });
  CHECK(upper == "TESTFARM");
  return CHECK_DONE("strings_test");
}
