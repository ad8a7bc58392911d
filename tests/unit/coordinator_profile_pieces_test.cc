// A farm client's coverage profiles, relayed a piece at a time: only whole ones count.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "coordinator/profile_pieces.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

protocol::ProfileData Piece(uint32_t index, uint64_t offset, uint64_t size, std::string data) {
  protocol::ProfileData piece;
  piece.index = index;
  piece.offset = offset;
  piece.size = size;
  piece.data = std::move(data);
  return piece;
}

std::string Read(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ProfilePieces, OnlyProfilesWhoseEveryPieceCameCount) {
  test::TempDir dir;
  ProfilePieces pieces(dir.path());
  // Two workers' profiles interleaved; the second's last piece never comes (its worker was lost
  // while the farm relayed it).
  pieces.Add(Piece(1, 0, 6, "abc"));
  pieces.Add(Piece(2, 0, 8, "wxyz"));
  pieces.Add(Piece(1, 3, 6, "def"));
  std::vector<std::filesystem::path> whole = pieces.Whole();
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0], dir.path() / "worker-1.profdata");
  EXPECT_EQ(Read(whole[0]), "abcdef");
  EXPECT_TRUE(pieces.errors().empty());
  // A profile of one piece is whole too.
  pieces.Add(Piece(3, 0, 2, "ok"));
  EXPECT_EQ(pieces.Whole().size(), 2u);
}

TEST(ProfilePieces, APieceOutOfOrderOrOfAnotherSizeEndsThatProfileWithTheReason) {
  test::TempDir dir;
  ProfilePieces pieces(dir.path());
  pieces.Add(Piece(1, 3, 6, "def"));  // its first piece is missing
  pieces.Add(Piece(1, 0, 6, "abc"));  // too late: the profile has ended
  pieces.Add(Piece(2, 0, 6, "abc"));
  pieces.Add(Piece(2, 3, 9, "def"));  // says another size
  pieces.Add(Piece(3, 0, 3, "abc"));  // unharmed by the others
  std::vector<std::filesystem::path> whole = pieces.Whole();
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0], dir.path() / "worker-3.profdata");
  ASSERT_EQ(pieces.errors().size(), 2u);
  EXPECT_EQ(pieces.errors()[0], "profile 1: pieces out of order");
  EXPECT_EQ(pieces.errors()[1], "profile 2: its pieces disagree about its size");
}

TEST(ProfilePieces, AWriteThatFailsOrARunWithoutCoverageIsAnError) {
  test::TempDir dir;
  ProfilePieces unwritable(dir.path() / "missing-dir");
  unwritable.Add(Piece(1, 0, 3, "abc"));
  EXPECT_TRUE(unwritable.Whole().empty());
  ASSERT_EQ(unwritable.errors().size(), 1u);
  EXPECT_NE(unwritable.errors()[0].find("cannot write"), std::string::npos)
      << unwritable.errors()[0];

  ProfilePieces none({});
  none.Add(Piece(1, 0, 3, "abc"));
  EXPECT_TRUE(none.Whole().empty());
  ASSERT_EQ(none.errors().size(), 1u);
  EXPECT_EQ(none.errors()[0], "profile 1: this run asked for no coverage");
}

}  // namespace
}  // namespace testfarm::coordinator
