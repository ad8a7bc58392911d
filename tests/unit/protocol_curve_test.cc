#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "protocol/curve.h"
#include "tests/support/temp_dir.h"

namespace testfarm::protocol {
namespace {

using test::TempDir;

std::string Write(const TempDir& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir.path() / name) << text;
  return (dir.path() / name).string();
}

TEST(CurveKeys, WrittenPairReadsBackAndTheSecretFileIsPrivate) {
  ASSERT_TRUE(CurveAvailable());
  TempDir dir;
  auto keys = GenerateKeyPair();
  ASSERT_TRUE(keys) << keys.error().message;
  auto written = WriteKeyPair(*keys, dir.path() / "coord");
  ASSERT_TRUE(written) << written.error().message;
  EXPECT_EQ(written->first, dir.path() / "coord.key");
  EXPECT_EQ(written->second, dir.path() / "coord.pub");
  struct stat st {};
  ASSERT_EQ(::stat(written->first.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);

  auto secret = ReadSecretKeyFile(written->first);
  ASSERT_TRUE(secret) << secret.error().message;
  EXPECT_EQ(secret->public_key, keys->public_key);
  EXPECT_EQ(secret->secret_key, keys->secret_key);
  auto public_key = ReadPublicKeyFile(written->second);
  ASSERT_TRUE(public_key) << public_key.error().message;
  EXPECT_EQ(*public_key, keys->public_key);
  // A .pub file is an allow-list of one.
  auto allowed = ReadAllowList(written->second);
  ASSERT_TRUE(allowed) << allowed.error().message;
  ASSERT_EQ(allowed->size(), 1u);
  EXPECT_EQ((*allowed)[0].public_key, keys->public_key);
}

TEST(CurveKeys, AnExistingKeyIsNeverOverwritten) {
  TempDir dir;
  auto first = WriteKeyPair(*GenerateKeyPair(), dir.path() / "k");
  ASSERT_TRUE(first);
  std::string before =
      std::string(std::istreambuf_iterator<char>(std::ifstream(first->first).rdbuf()), {});
  auto second = WriteKeyPair(*GenerateKeyPair(), dir.path() / "k");
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("already exists"), std::string::npos);
  std::string after =
      std::string(std::istreambuf_iterator<char>(std::ifstream(first->first).rdbuf()), {});
  EXPECT_EQ(before, after);
}

TEST(CurveKeys, BadKeyFilesNameTheFileAndLine) {
  TempDir dir;
  auto keys = *GenerateKeyPair();
  auto other = *GenerateKeyPair();

  auto missing = ReadSecretKeyFile(dir.path() / "nope.key");
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("nope.key"), std::string::npos);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);

  auto not_z85 =
      ReadSecretKeyFile(Write(dir, "a.key", "# c\n" + keys.public_key + "\nnot-a-key\n"));
  ASSERT_FALSE(not_z85);
  EXPECT_NE(not_z85.error().message.find("a.key:3: expected a secret key"), std::string::npos)
      << not_z85.error().message;

  auto mismatch =
      ReadSecretKeyFile(Write(dir, "b.key", keys.public_key + "\n" + other.secret_key + "\n"));
  ASSERT_FALSE(mismatch);
  EXPECT_NE(mismatch.error().message.find("b.key:2: the secret key does not belong"),
            std::string::npos)
      << mismatch.error().message;

  // A public key file given where the secret one belongs.
  auto only_public = ReadSecretKeyFile(Write(dir, "c.pub", keys.public_key + "\n"));
  ASSERT_FALSE(only_public);
  EXPECT_NE(only_public.error().message.find("expected a secret key file"), std::string::npos);

  auto two_publics =
      ReadPublicKeyFile(Write(dir, "d.pub", keys.public_key + "\n" + keys.public_key));
  ASSERT_FALSE(two_publics);
  EXPECT_NE(two_publics.error().message.find("d.pub"), std::string::npos);
}

TEST(CurveKeys, AllowListTakesLabelsAndCommentsAndRejectsJunk) {
  TempDir dir;
  auto a = *GenerateKeyPair();
  auto b = *GenerateKeyPair();
  auto list = ReadAllowList(Write(
      dir, "workers", "# fleet\n\n" + a.public_key + " build host 7\n" + b.public_key + "\n"));
  ASSERT_TRUE(list) << list.error().message;
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].label, "build host 7");
  EXPECT_EQ((*list)[1].public_key, b.public_key);
  EXPECT_EQ((*list)[1].label, "");

  auto junk = ReadAllowList(Write(dir, "junk", a.public_key + "\nhello world\n"));
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message.find("junk:2:"), std::string::npos) << junk.error().message;

  auto empty = ReadAllowList(Write(dir, "empty", "# nobody\n"));
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.error().message.find("no worker keys"), std::string::npos);
}

TEST(CurveKeys, Z85OfABinaryKeyMatchesTheTextForm) {
  auto keys = *GenerateKeyPair();
  uint8_t binary[32];
  ASSERT_NE(zmq_z85_decode(binary, keys.public_key.c_str()), nullptr);
  EXPECT_EQ(Z85Of(std::string_view(reinterpret_cast<const char*>(binary), 32)), keys.public_key);
  EXPECT_EQ(Z85Of("short"), "");
}

}  // namespace
}  // namespace testfarm::protocol
