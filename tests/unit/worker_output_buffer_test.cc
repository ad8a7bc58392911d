#include <gtest/gtest.h>

#include <random>
#include <string>

#include "worker/output_buffer.h"

namespace testfarm::worker {
namespace {

// What the buffer must keep, computed the obvious way.
std::string Expected(const std::string& data, std::size_t cap) {
  if (data.size() <= cap) return data;
  std::size_t head = cap / 2;
  std::size_t tail = cap - head;
  return data.substr(0, head) + OutputBuffer::DroppedMarker(data.size() - cap) +
         data.substr(data.size() - tail);
}

std::string Pattern(std::size_t n) {
  std::string s(n, ' ');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
  return s;
}

TEST(OutputBufferTest, KeepsEverythingUnderTheCap) {
  OutputBuffer buffer(16);
  buffer.Append("hello ");
  buffer.Append("world");
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, "hello world");
  EXPECT_EQ(out.dropped, 0u);
  EXPECT_EQ(out.total, 11u);
}

TEST(OutputBufferTest, ExactlyTheCapDropsNothing) {
  OutputBuffer buffer(8);
  buffer.Append("12345678");
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, "12345678");
  EXPECT_EQ(out.dropped, 0u);
}

TEST(OutputBufferTest, KeepsHeadAndTailWithAMarker) {
  OutputBuffer buffer(8);
  buffer.Append("0123456789");
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, "0123\n[testfarm: 2 bytes dropped]\n6789");
  EXPECT_EQ(out.dropped, 2u);
  EXPECT_EQ(out.total, 10u);
}

TEST(OutputBufferTest, MarkerLine) {
  EXPECT_EQ(OutputBuffer::DroppedMarker(9437184), "\n[testfarm: 9437184 bytes dropped]\n");
}

TEST(OutputBufferTest, OddCapKeepsCapBytes) {
  OutputBuffer buffer(5);
  buffer.Append("abcdefghij");
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, "ab" + OutputBuffer::DroppedMarker(5) + "hij");
  EXPECT_EQ(out.dropped, 5u);
}

TEST(OutputBufferTest, ZeroCapKeepsNothingButCounts) {
  OutputBuffer buffer(0);
  buffer.Append("abc");
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, OutputBuffer::DroppedMarker(3));
  EXPECT_EQ(out.dropped, 3u);
  EXPECT_EQ(out.total, 3u);
}

TEST(OutputBufferTest, EmptyStream) {
  OutputBuffer buffer(1024);
  CapturedOutput out = buffer.Take();
  EXPECT_EQ(out.text, "");
  EXPECT_EQ(out.dropped, 0u);
  EXPECT_EQ(out.total, 0u);
}

TEST(OutputBufferTest, TakeDoesNotConsume) {
  OutputBuffer buffer(4);
  buffer.Append("abcdef");
  EXPECT_EQ(buffer.Take().text, buffer.Take().text);
  buffer.Append("g");
  EXPECT_EQ(buffer.Take().text, "ab" + OutputBuffer::DroppedMarker(3) + "fg");
}

TEST(OutputBufferTest, FloodKeepsFirstAndLastHalves) {
  const std::size_t cap = 1u << 20;
  const std::string end = "tf_flood: END\n";
  OutputBuffer buffer(cap);
  std::string block(64 * 1024, 'x');
  for (int i = 0; i < 160; ++i) buffer.Append(block);  // 10 MiB
  buffer.Append(end);
  CapturedOutput out = buffer.Take();
  uint64_t total = (10u << 20) + end.size();
  EXPECT_EQ(out.total, total);
  EXPECT_EQ(out.dropped, total - cap);
  std::string marker = OutputBuffer::DroppedMarker(total - cap);
  ASSERT_EQ(out.text.size(), cap + marker.size());
  EXPECT_EQ(out.text.substr(cap / 2, marker.size()), marker);
  EXPECT_TRUE(out.text.ends_with("x" + end));
  EXPECT_EQ(out.text.find_first_not_of('x'), cap / 2);  // the head is all x
}

// Any chunking of the same bytes gives the same capture, for caps around every boundary.
TEST(OutputBufferTest, ChunkingDoesNotMatter) {
  std::mt19937 random(42);
  for (std::size_t cap : {0u, 1u, 2u, 3u, 7u, 8u, 64u, 101u}) {
    for (std::size_t size : {0u, 1u, 5u, 8u, 9u, 63u, 64u, 65u, 300u, 1000u}) {
      std::string data = Pattern(size);
      OutputBuffer buffer(cap);
      std::size_t pos = 0;
      while (pos < data.size()) {
        std::size_t n = std::uniform_int_distribution<std::size_t>(0, 2 * cap + 3)(random);
        n = std::min(n, data.size() - pos);
        buffer.Append(std::string_view(data).substr(pos, n));
        pos += n;
      }
      CapturedOutput out = buffer.Take();
      EXPECT_EQ(out.text, Expected(data, cap)) << "cap " << cap << " size " << size;
      EXPECT_EQ(out.total, size);
      EXPECT_EQ(out.dropped, size > cap ? size - cap : 0u);
    }
  }
}

}  // namespace
}  // namespace testfarm::worker
