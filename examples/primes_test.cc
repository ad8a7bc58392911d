// Checks a sieve of Eratosthenes against known prime counts (takes a moment: a real workload).
#include <cstdint>
#include <vector>

#include "check.h"

static std::size_t CountPrimes(std::size_t limit) {
  std::vector<bool> composite(limit + 1, false);
  std::size_t count = 0;
  for (std::size_t i = 2; i <= limit; ++i) {
    if (composite[i]) continue;
    ++count;
    for (std::size_t j = i * i; j <= limit; j += i) composite[j] = true;
  }
  return count;
}

int main() {
  CHECK(CountPrimes(10) == 4);
  CHECK(CountPrimes(1000) == 168);
  CHECK(CountPrimes(1000000) == 78498);
  CHECK(CountPrimes(20000000) == 1270607);
  return CHECK_DONE("primes_test");
}
