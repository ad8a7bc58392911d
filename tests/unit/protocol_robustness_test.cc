// Decode is total and bounded: hostile bytes never throw, crash or make it allocate by a
// declared size. This file replaces global operator new to watch the largest single request, so
// it affects every test in unit_protocol, harmlessly: it only records a maximum.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "protocol/codec.h"

namespace {
std::atomic<std::size_t> g_largest_allocation{0};
}  // namespace

// GCC cannot see that these news and deletes pair up through malloc and free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

// Every replaceable form this binary's code and libraries use, so that each new pairs with a
// delete of the same family (libzmq allocates with the nothrow form).
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  std::size_t seen = g_largest_allocation.load(std::memory_order_relaxed);
  while (size > seen && !g_largest_allocation.compare_exchange_weak(seen, size)) {
  }
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new(std::size_t size) {
  if (void* p = operator new(size, std::nothrow)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace testfarm::protocol {
namespace {

using Code = DecodeError::Code;

struct Measured {
  std::variant<Message, DecodeError> result;
  std::size_t largest_allocation;
  std::chrono::milliseconds elapsed;
};

Measured DecodeMeasured(std::string_view body) {
  g_largest_allocation = 0;
  auto start = std::chrono::steady_clock::now();
  auto result = Decode(kHeader, body);
  auto elapsed = std::chrono::steady_clock::now() - start;
  return {std::move(result), g_largest_allocation.load(),
          std::chrono::duration_cast<std::chrono::milliseconds>(elapsed)};
}

// Each input is a few bytes that claim about 4 GiB of content (or 4 billion elements).
TEST(CodecHostileClaims, AreRejectedQuicklyWithSmallAllocations) {
  const std::string heartbeat_prefix = "\x82\xa4type\xa9heartbeat\xa1x";
  const std::string claims[] = {
      "\xdd\xff\xff\xff\xff",              // array32 of 4G elements
      "\xdf\xff\xff\xff\xff",              // map32 of 4G pairs
      "\xdd\xff\xff\xff\xff\xc0\xc0\xc0",  // ... with a few real elements
      "\xdb\xff\xff\xff\xff"
      "abc",  // str32 of 4 GiB
      "\xc6\xff\xff\xff\xff"
      "abc",                                          // bin32 of 4 GiB
      "\xc9\xff\xff\xff\xff\x01",                     // ext32 of 4 GiB
      "\xc9\xff\xff\xff\xfe\x01",                     // ext32 of 4 GiB - 1
      heartbeat_prefix + "\xdd\xff\xff\xff\xff\xc0",  // nested in a valid map
      heartbeat_prefix + "\xdf\xff\xff\xff\xff\xc0",  // nested map claim
      heartbeat_prefix + std::string(20, '\xdd'),     // a run of array32 headers
  };
  for (const std::string& body : claims) {
    Measured m = DecodeMeasured(body);
    ASSERT_TRUE(std::holds_alternative<DecodeError>(m.result));
    EXPECT_EQ(std::get<DecodeError>(m.result).code, Code::kMalformed)
        << std::get<DecodeError>(m.result).message;
    EXPECT_LT(m.largest_allocation, std::size_t{1} << 16) << "body of " << body.size() << " bytes";
    EXPECT_LT(m.elapsed.count(), 1000);
  }
}

// Memory follows real content: a megabyte of nils costs a bounded tree, never more.
TEST(CodecHostileClaims, ManySmallValuesAreCappedByCount) {
  std::string body = "\x82\xa4type\xa9heartbeat\xa1x";
  body += std::string("\xdd\x00\x10\x00\x00", 5);  // an array of 2^20 elements
  body += std::string(1 << 20, '\xc0');
  Measured m = DecodeMeasured(body);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(m.result));
  EXPECT_EQ(std::get<DecodeError>(m.result).code, Code::kMalformed);
  EXPECT_LT(m.largest_allocation, std::size_t{64} << 20);
}

std::string Mutate(std::string body, std::mt19937& rng) {
  std::uniform_int_distribution<int> byte(0, 255);
  int edits = 1 + static_cast<int>(rng() % 4);
  for (int i = 0; i < edits; ++i) {
    std::size_t at = body.empty() ? 0 : rng() % body.size();
    switch (rng() % 3) {
      case 0:
        if (!body.empty()) body[at] = static_cast<char>(byte(rng));
        break;
      case 1:
        body.insert(body.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(byte(rng)));
        break;
      default:
        if (!body.empty()) body.erase(at, 1);
    }
  }
  return body;
}

// A small in-process fuzz: whatever Decode accepts must survive re-encoding unchanged.
TEST(CodecRobustness, MutatedMessagesNeverThrowAndRoundTripWhenAccepted) {
  const Message seeds[] = {
      Hello{.worker_name = "w", .slots = 4, .os = "linux", .arch = "", .labels = {{"a", "b"}}},
      JobAssign{
          .lease = 1,
          .job_id = 2,
          .name = "n",
          .argv = {"x", "y"},
          .env = {{"K", "V"}},
          .cwd = "/",
          .report_env = "GTEST_OUTPUT=json:",
          .artifact_root = "/b",
          .artifacts =
              {{.path = "bin/t", .sha256 = std::string(64, 'd'), .size = 7, .executable = true}},
          .library_dirs = {"lib"},
          .coverage = true},
      Chunk{.sha256 = std::string(64, 'e'), .offset = 1, .size = 9, .data = "xyz", .error = ""},
      JobResult{.lease = 3,
                .state = ExitState::Signaled(9, false),
                .stdout_text = "out",
                .stderr_text = "err",
                .report = "{}",
                .report_error = "",
                .profiles = 2,
                .profiles_empty = 1},
      JobStarted{.lease = 5},
      Cancel{.lease = 5},
      Bye{.reason = "r"},
  };
  std::mt19937 rng(12345);
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    std::string body = Mutate(EncodeBody(seeds[rng() % std::size(seeds)]), rng);
    std::variant<Message, DecodeError> result;
    ASSERT_NO_THROW(result = Decode(kHeader, body));
    if (const auto* message = std::get_if<Message>(&result)) {
      ++accepted;
      auto again = Decode(kHeader, EncodeBody(*message));
      ASSERT_TRUE(std::holds_alternative<Message>(again));
      EXPECT_EQ(std::get<Message>(again), *message);
    }
  }
  // Mutating string contents keeps a message valid, so some must have been accepted.
  EXPECT_GT(accepted, 100);
}

TEST(CodecRobustness, RandomBytesNeverThrow) {
  std::mt19937 rng(54321);
  for (int i = 0; i < 20'000; ++i) {
    std::string body(rng() % 64, '\0');
    for (char& c : body) c = static_cast<char>(rng());
    std::variant<Message, DecodeError> result;
    ASSERT_NO_THROW(result = Decode(kHeader, body));
    if (auto* error = std::get_if<DecodeError>(&result)) {
      EXPECT_FALSE(error->message.empty());
    }
  }
}

}  // namespace
}  // namespace testfarm::protocol
