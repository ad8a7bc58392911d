#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "shared/sha256.h"
#include "tests/support/temp_dir.h"

namespace testfarm {
namespace {

// FIPS 180-2 test vectors.
TEST(Sha256, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, IncrementalEqualsOneShotAndResetStartsOver) {
  Sha256 hash;
  std::string million(1000000, 'a');
  for (std::size_t i = 0; i < million.size(); i += 4096) hash.Update(million.substr(i, 4096));
  EXPECT_EQ(hash.HexDigest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  hash.Reset();
  hash.Update("abc");
  EXPECT_EQ(hash.HexDigest(), Sha256Hex("abc"));
}

TEST(Sha256, FileDigestAndMissingFileError) {
  test::TempDir dir;
  std::ofstream(dir.path() / "f") << "abc";
  auto digest = Sha256File(dir.path() / "f");
  ASSERT_TRUE(digest) << digest.error().message;
  EXPECT_EQ(*digest, Sha256Hex("abc"));
  auto missing = Sha256File(dir.path() / "nope");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope"), std::string::npos);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
}

TEST(Sha256, IsSha256HexAcceptsOnlyLowercaseDigests) {
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("x")));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex("../" + std::string(61, 'a')));
}

}  // namespace
}  // namespace testfarm
