#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "worker/scratch_dir.h"

namespace testfarm::worker {
namespace {

namespace fs = std::filesystem;

class ScratchDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<ScratchDir> parent = ScratchDir::Create(SystemTempDir(), "testfarm-scratch-test-");
    ASSERT_TRUE(parent.ok()) << parent.error().message;
    parent_ = std::move(parent).value();
  }

  ScratchDir MustCreate() {
    Result<ScratchDir> dir = ScratchDir::Create(parent_.path(), "job-");
    EXPECT_TRUE(dir.ok());
    return dir.ok() ? std::move(dir).value() : ScratchDir();
  }

  ScratchDir parent_;
};

TEST_F(ScratchDirTest, CreatesAPrivateDirectory) {
  ScratchDir dir = MustCreate();
  ASSERT_TRUE(dir.valid());
  EXPECT_EQ(dir.path().parent_path(), parent_.path());
  EXPECT_TRUE(dir.path().filename().string().starts_with("job-"));
  struct stat st;
  ASSERT_EQ(::stat(dir.path().c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(ScratchDirTest, DistinctDirectories) {
  ScratchDir a = MustCreate();
  ScratchDir b = MustCreate();
  EXPECT_NE(a.path(), b.path());
}

TEST_F(ScratchDirTest, RemovedWithEverythingInItEvenIfReadOnly) {
  fs::path path;
  fs::path outside = parent_.path() / "outside.txt";
  std::ofstream(outside) << "keep me\n";
  {
    ScratchDir dir = MustCreate();
    path = dir.path();
    fs::create_directories(path / "a" / "b");
    std::ofstream(path / "a" / "b" / "file.txt") << "data\n";
    std::ofstream(path / "top.txt") << "data\n";
    fs::create_symlink(outside, path / "link");
    fs::create_directory_symlink(parent_.path(), path / "dirlink");
    ::chmod((path / "a" / "b").c_str(), 0500);  // no write: its file cannot be unlinked as is
    ::chmod((path / "a").c_str(), 0000);
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::exists(outside)) << "removal followed a symlink out of the tree";
  fs::remove(outside);
}

TEST_F(ScratchDirTest, EmptyClearsEverythingButKeepsThePrivateDirectory) {
  fs::path outside = parent_.path() / "outside.txt";
  std::ofstream(outside) << "keep me\n";
  ScratchDir dir = MustCreate();
  fs::path path = dir.path();
  fs::create_directories(path / "a" / "b");
  std::ofstream(path / "a" / "b" / "file.txt") << "data\n";
  std::ofstream(path / ".hidden") << "data\n";
  fs::create_symlink(outside, path / "link");
  ::chmod((path / "a" / "b").c_str(), 0500);
  ::chmod((path / "a").c_str(), 0000);
  ::chmod(path.c_str(), 0755);  // a job may loosen (or tighten) its TMPDIR's mode

  ASSERT_TRUE(dir.Empty());
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_TRUE(fs::is_empty(path));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(fs::exists(outside)) << "emptying followed a symlink out of the tree";
  EXPECT_TRUE(dir.Empty()) << "emptying an empty directory succeeds";
  fs::remove(outside);
}

TEST_F(ScratchDirTest, EmptyRefusesAPathThatNoLongerNamesOurDirectory) {
  fs::path victim = parent_.path() / "victim";
  fs::create_directory(victim);
  std::ofstream(victim / "precious") << "keep me\n";
  ::chmod(victim.c_str(), 0755);
  ScratchDir dir = MustCreate();
  fs::path path = dir.path();
  fs::remove(path);                            // what `rm -rf "$TMPDIR"` does ...
  fs::create_directory_symlink(victim, path);  // ... and `ln -s victim "$TMPDIR"`
  EXPECT_FALSE(dir.Empty());
  EXPECT_TRUE(fs::exists(victim / "precious")) << "emptying followed the job's symlink";
  EXPECT_EQ(fs::status(victim).permissions() & fs::perms::all,
            fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                fs::perms::others_read | fs::perms::others_exec);
  dir = ScratchDir();  // dropping it removes the symlink, not what it points to
  EXPECT_FALSE(fs::exists(fs::symlink_status(path)));
  EXPECT_TRUE(fs::exists(victim / "precious"));
}

TEST_F(ScratchDirTest, MoveTransfersOwnership) {
  ScratchDir a = MustCreate();
  fs::path path = a.path();
  ScratchDir b = std::move(a);
  EXPECT_FALSE(a.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  EXPECT_EQ(b.path(), path);
  ScratchDir c = MustCreate();
  fs::path c_path = c.path();
  c = std::move(b);  // c's old directory goes
  EXPECT_FALSE(fs::exists(c_path));
  EXPECT_TRUE(fs::exists(path));
}

TEST_F(ScratchDirTest, RemoveIsIdempotent) {
  ScratchDir dir = MustCreate();
  fs::path path = dir.path();
  EXPECT_TRUE(dir.Remove());
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(dir.valid());
  EXPECT_TRUE(dir.Remove());
}

TEST_F(ScratchDirTest, MissingParentIsAnErrorValue) {
  Result<ScratchDir> dir = ScratchDir::Create(parent_.path() / "missing", "job-");
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.error().message.find("No such file or directory"), std::string::npos)
      << dir.error().message;
}

}  // namespace
}  // namespace testfarm::worker
