// Checks that std::sort and std::stable_sort agree with a simple insertion sort.
#include <algorithm>
#include <random>
#include <vector>

#include "check.h"

int main() {
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    std::vector<int> v(200);
    for (int& x : v) x = static_cast<int>(rng() % 1000);
    std::vector<int> expected = v;
    for (std::size_t i = 1; i < expected.size(); ++i)
      for (std::size_t j = i; j > 0 && expected[j - 1] > expected[j]; --j)
        std::swap(expected[j - 1], expected[j]);
    std::vector<int> a = v, b = v;
    std::sort(a.begin(), a.end());
    std::stable_sort(b.begin(), b.end());
    CHECK(a == expected);
    CHECK(b == expected);
  }
  return CHECK_DONE("sort_test");
}
