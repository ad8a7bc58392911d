#pragma once
// A ten-line test harness for the examples: CHECK prints the failing expression and counts it.
#include <cstdio>

inline int g_failures = 0;

#define CHECK(expr)                                                                 \
  do {                                                                              \
    if (!(expr)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #expr); \
      ++g_failures;                                                                 \
    }                                                                               \
  } while (0)

#define CHECK_DONE(name) \
  (std::printf("%s: %s\n", name, g_failures == 0 ? "ok" : "FAILED"), g_failures == 0 ? 0 : 1)
