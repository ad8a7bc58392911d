// ServedFiles: a blob's file is opened once for all its chunks, kept open (even if replaced or
// removed meanwhile) among at most max_open files, and errors name the file.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "coordinator/artifacts.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;

std::string Bytes(std::size_t size, char seed) {
  std::string data(size, '\0');
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(seed + i * 7);
  return data;
}

struct Files {
  test::TempDir dir;
  fs::path Write(const std::string& name, const std::string& data) {
    fs::path path = dir.path() / name;
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }
};

// Reads the whole blob in `chunk`-byte pieces, as a worker would fetch it.
std::string ReadAll(ServedFiles& served, const std::string& sha, uint64_t size, uint32_t chunk,
                    const fs::path& path, int* locates) {
  std::string data;
  for (uint64_t offset = 0; offset < size; offset += chunk) {
    protocol::Chunk piece = served.Read({sha, offset, chunk}, [&]() -> Result<fs::path> {
      ++*locates;
      return path;
    });
    EXPECT_EQ(piece.error, "");
    EXPECT_EQ(piece.size, size);
    EXPECT_EQ(piece.offset, offset);
    data += piece.data;
  }
  return data;
}

TEST(ServedFiles, EveryChunkOfAFetchComesFromOneOpenFileClosedAfterTheLast) {
  Files files;
  const std::string data = Bytes(100'000, 'a');
  fs::path path = files.Write("big", data);
  ServedFiles served;
  int locates = 0;
  EXPECT_EQ(ReadAll(served, "sha-big", data.size(), 1000, path, &locates), data);
  EXPECT_EQ(locates, 1);
  EXPECT_EQ(served.opens(), 1u);
  EXPECT_EQ(served.open_now(), 0u) << "closed after the last piece";
  // Removed or replaced during a fetch: what was opened is still what is served.
  std::string first_half;
  for (uint64_t offset = 0; offset < 50'000; offset += 1000) {
    first_half +=
        served.Read({"sha-big", offset, 1000}, [&]() -> Result<fs::path> { return path; }).data;
  }
  fs::remove(path);
  files.Write("big", "replaced");
  std::string second_half;
  for (uint64_t offset = 50'000; offset < data.size(); offset += 1000) {
    second_half += served
                       .Read({"sha-big", offset, 1000},
                             [&]() -> Result<fs::path> {
                               ADD_FAILURE() << "looked up during a fetch";
                               return path;
                             })
                       .data;
  }
  EXPECT_EQ(first_half + second_half, data);
  EXPECT_EQ(served.opens(), 2u);
  // A new fetch looks the blob up again.
  EXPECT_EQ(ReadAll(served, "sha-big", 8, 1000, path, &locates), "replaced");
  EXPECT_EQ(locates, 2);
}

TEST(ServedFiles, AtMostMaxOpenFilesTheLeastRecentlyReadClosedFirst) {
  Files files;
  ServedFiles served(2);
  fs::path a = files.Write("a", Bytes(20, 'a'));
  fs::path b = files.Write("b", Bytes(20, 'b'));
  fs::path c = files.Write("c", Bytes(20, 'c'));
  // Pieces from the middle of each: neither a fetch's first nor its last.
  auto read = [&](const std::string& sha, const fs::path& path) {
    return served.Read({sha, 5, 5}, [&]() -> Result<fs::path> { return path; }).data;
  };
  EXPECT_EQ(read("A", a), Bytes(20, 'a').substr(5, 5));
  EXPECT_EQ(read("B", b), Bytes(20, 'b').substr(5, 5));
  EXPECT_EQ(read("A", a), Bytes(20, 'a').substr(5, 5));  // B is now the least recently read
  EXPECT_EQ(read("C", c), Bytes(20, 'c').substr(5, 5));  // closes B
  EXPECT_EQ(served.open_now(), 2u);
  EXPECT_EQ(served.opens(), 3u);
  EXPECT_EQ(read("A", a), Bytes(20, 'a').substr(5, 5));
  EXPECT_EQ(served.opens(), 3u) << "A stayed open";
  EXPECT_EQ(read("B", b), Bytes(20, 'b').substr(5, 5));
  EXPECT_EQ(served.opens(), 4u) << "B was opened again";
}

TEST(ServedFiles, ABlobNobodyHasOrAFileThatCannotBeReadIsAnErrorChunk) {
  Files files;
  ServedFiles served;
  protocol::Chunk unknown = served.Read(
      {"nope", 0, 10}, [] { return Result<fs::path>(Error{"no file has that content"}); });
  EXPECT_EQ(unknown.error, "no file has that content");
  EXPECT_EQ(unknown.sha256, "nope");
  fs::path missing = files.dir.path() / "missing";
  protocol::Chunk gone =
      served.Read({"gone", 0, 10}, [&]() -> Result<fs::path> { return missing; });
  EXPECT_EQ(gone.error, "cannot read " + missing.string() + ": No such file or directory");
  EXPECT_EQ(served.open_now(), 0u);
}

}  // namespace
}  // namespace testfarm::coordinator
