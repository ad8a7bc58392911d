#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "coordinator/manifest.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

using testfarm::test::TempDir;

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;
using namespace std::chrono_literals;

Result<std::vector<SuiteSpec>> Parse(const std::string& text,
                                     std::vector<std::string>* warnings = nullptr) {
  return ParseManifestText(text, "testfarm.toml", "/proj", warnings);
}

// The error message of a manifest that must not parse.
std::string ErrorOf(const std::string& text) {
  Result<std::vector<SuiteSpec>> result = Parse(text);
  if (result.ok()) return "(parsed)";
  return result.error().message;
}

TEST(Manifest, FullManifestWithDefaultsOverridesAndPaths) {
  const char* text = R"(# testfarm.toml
[defaults]
timeout = "30s"
env = { LANG = "C", MODE = "default" }
labels = ["unit"]

[[suite]]
name = "core"
command = "build/core_test"
args = ["--verbose", ""]
kind = "gtest"
env = { CORE_DATA = "data", MODE = "core" }
cwd = "build"
timeout = 60
labels = ["fast", "core", "unit"]
data = ["data/fixtures.bin", "/abs/x.bin", "./data/../more.bin"]

[[suite]]
command = "plain_test"

[[suite]]
name = "abs"
command = "/usr/bin/true"
kind = "plain"
timeout = 1.5
cwd = "/tmp"
env.EXTRA = "1"

[[suite]]
command = "../other/thing"
timeout = "500ms"
kind = "auto"
)";
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites = Parse(text, &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_TRUE(warnings.empty());
  ASSERT_EQ(suites->size(), 4u);

  const SuiteSpec& core = (*suites)[0];
  EXPECT_EQ(core.name, "core");
  EXPECT_THAT(core.command, ElementsAre("/proj/build/core_test", "--verbose", ""));
  EXPECT_EQ(core.kind, SuiteKind::kGtest);
  EXPECT_THAT(core.env,
              ElementsAre(Pair("CORE_DATA", "data"), Pair("LANG", "C"), Pair("MODE", "core")));
  EXPECT_EQ(core.cwd, "/proj/build");
  EXPECT_EQ(core.timeout, Millis(60'000));
  EXPECT_THAT(core.labels, ElementsAre("unit", "fast", "core"));
  EXPECT_THAT(core.data_files,
              ElementsAre("/proj/data/fixtures.bin", "/abs/x.bin", "/proj/more.bin"));
  EXPECT_EQ(core.origin, "testfarm.toml:7");
  EXPECT_FALSE(core.will_fail);
  EXPECT_FALSE(core.disabled);
  EXPECT_FALSE(core.run_serial);
  EXPECT_FALSE(core.skip_return_code.has_value());

  // A bare command name is resolved against the manifest's folder, never searched in PATH.
  const SuiteSpec& plain = (*suites)[1];
  EXPECT_EQ(plain.name, "plain_test");
  EXPECT_THAT(plain.command, ElementsAre("/proj/plain_test"));
  EXPECT_EQ(plain.kind, SuiteKind::kAuto);
  EXPECT_THAT(plain.env, ElementsAre(Pair("LANG", "C"), Pair("MODE", "default")));
  EXPECT_EQ(plain.cwd, "");
  EXPECT_EQ(plain.timeout, Millis(30'000));
  EXPECT_THAT(plain.labels, ElementsAre("unit"));
  EXPECT_TRUE(plain.data_files.empty());
  EXPECT_EQ(plain.origin, "testfarm.toml:18");

  const SuiteSpec& abs = (*suites)[2];
  EXPECT_EQ(abs.name, "abs");
  EXPECT_THAT(abs.command, ElementsAre("/usr/bin/true"));
  EXPECT_EQ(abs.kind, SuiteKind::kPlain);
  EXPECT_EQ(abs.timeout, Millis(1500));
  EXPECT_EQ(abs.cwd, "/tmp");
  EXPECT_THAT(abs.env, ElementsAre(Pair("EXTRA", "1"), Pair("LANG", "C"), Pair("MODE", "default")));

  const SuiteSpec& thing = (*suites)[3];
  EXPECT_EQ(thing.name, "thing");
  EXPECT_THAT(thing.command, ElementsAre("/other/thing"));
  EXPECT_EQ(thing.timeout, Millis(500));
  EXPECT_EQ(thing.kind, SuiteKind::kAuto);
  EXPECT_EQ(thing.origin, "testfarm.toml:29");
}

TEST(Manifest, DefaultsCanSetKindCwdAndData) {
  const char* text = R"([defaults]
kind = "plain"
cwd = "work"
data = ["shared.bin"]
timeout = 0

[[suite]]
command = "a"
data = ["own.bin"]

[[suite]]
command = "b"
kind = "gtest"
cwd = "/elsewhere"
)";
  Result<std::vector<SuiteSpec>> suites = Parse(text);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  ASSERT_EQ(suites->size(), 2u);
  EXPECT_EQ((*suites)[0].kind, SuiteKind::kPlain);
  EXPECT_EQ((*suites)[0].cwd, "/proj/work");
  EXPECT_THAT((*suites)[0].data_files, ElementsAre("/proj/shared.bin", "/proj/own.bin"));
  EXPECT_EQ((*suites)[0].timeout, Millis(0));
  EXPECT_EQ((*suites)[1].kind, SuiteKind::kGtest);
  EXPECT_EQ((*suites)[1].cwd, "/elsewhere");
  EXPECT_THAT((*suites)[1].data_files, ElementsAre("/proj/shared.bin"));
}

TEST(Manifest, NoTimeoutAnywhereLeavesItToTheRun) {
  Result<std::vector<SuiteSpec>> suites = Parse("[[suite]]\ncommand = \"t\"\n");
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_FALSE((*suites)[0].timeout.has_value());
}

TEST(Manifest, InlineArrayOfSuiteTables) {
  Result<std::vector<SuiteSpec>> suites =
      Parse("suite = [ { command = \"a\" }, { command = \"b\", name = \"bee\" } ]\n");
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  ASSERT_EQ(suites->size(), 2u);
  EXPECT_EQ((*suites)[0].name, "a");
  EXPECT_EQ((*suites)[1].name, "bee");
  EXPECT_EQ((*suites)[1].origin, "testfarm.toml:1");
}

TEST(Manifest, TomlSyntaxErrorNamesLineAndColumn) {
  // The positions and descriptions are toml++'s.
  std::string message = ErrorOf("[[suite]]\ncommand = \"unterminated\nname = \"x\"\n");
  EXPECT_THAT(message, StartsWith("testfarm.toml:2:24: "));
  EXPECT_THAT(message, HasSubstr("parsing string"));
  EXPECT_THAT(ErrorOf("[[suite]]\ncommand = \"a\"\ncommand = \"b\"\n"),
              StartsWith("testfarm.toml:3:11: "));
  EXPECT_THAT(ErrorOf("[[suite]]\ncommand = \"a\"\ntimeout = 30s\n"),
              StartsWith("testfarm.toml:3:13: "));
}

struct BadCase {
  const char* what;
  const char* text;
  const char* message;
};

// Each malformed manifest fails with exactly this message: file:line:column, suite, key.
TEST(Manifest, WrongTypesNameFileLineColumnSuiteAndKey) {
  const BadCase cases[] = {
      {"name not a string", "[[suite]]\nname = 1\ncommand = \"x\"\n",
       "testfarm.toml:2:8: suite #1: key 'name': expected a non-empty string, got an integer"},
      {"empty name", "[[suite]]\nname = \"\"\ncommand = \"x\"\n",
       "testfarm.toml:2:8: suite #1: key 'name': expected a non-empty string, got \"\""},
      {"command not a string", "[[suite]]\nname = \"core\"\ncommand = [\"a\"]\n",
       "testfarm.toml:3:11: suite 'core': key 'command': expected a non-empty string, got an "
       "array"},
      {"empty command", "[[suite]]\nname = \"core\"\ncommand = \"\"\n",
       "testfarm.toml:3:11: suite 'core': key 'command': expected a non-empty string, got \"\""},
      {"args not an array", "[[suite]]\ncommand = \"x\"\nargs = \"-v\"\n",
       "testfarm.toml:3:8: suite #1: key 'args': expected an array of strings, got a string"},
      {"args element", "[[suite]]\ncommand = \"x\"\nargs = [\"-v\", 2]\n",
       "testfarm.toml:3:15: suite #1: key 'args': expected an array of strings, got an integer "
       "in it"},
      {"env not a table", "[[suite]]\nname = \"core\"\ncommand = \"x\"\nenv = [\"A=1\"]\n",
       "testfarm.toml:4:7: suite 'core': key 'env': expected a table of strings, got an array"},
      {"env value", "[[suite]]\nname = \"core\"\ncommand = \"x\"\nenv = { A = \"1\", B = 2 }\n",
       "testfarm.toml:4:22: suite 'core': key 'env': value of 'B' must be a string, got an "
       "integer"},
      {"labels not an array", "[[suite]]\ncommand = \"x\"\nlabels = \"fast\"\n",
       "testfarm.toml:3:10: suite #1: key 'labels': expected an array of non-empty strings, got "
       "a string"},
      {"labels element", "[[suite]]\ncommand = \"x\"\nlabels = [\"a\", [\"b\"]]\n",
       "testfarm.toml:3:16: suite #1: key 'labels': expected an array of non-empty strings, got "
       "an array in it"},
      {"data element", "[[suite]]\ncommand = \"x\"\ndata = [true]\n",
       "testfarm.toml:3:9: suite #1: key 'data': expected an array of non-empty strings, got a "
       "boolean in it"},
      {"cwd not a string", "[[suite]]\ncommand = \"x\"\ncwd = 3\n",
       "testfarm.toml:3:7: suite #1: key 'cwd': expected a non-empty string, got an integer"},
      {"bad kind", "[[suite]]\nname = \"core\"\ncommand = \"x\"\nkind = \"python\"\n",
       "testfarm.toml:4:8: suite 'core': key 'kind': expected \"gtest\", \"plain\" or \"auto\""},
      {"kind not a string", "[[suite]]\ncommand = \"x\"\nkind = 1\n",
       "testfarm.toml:3:8: suite #1: key 'kind': expected \"gtest\", \"plain\" or \"auto\""},
      {"bad duration", "[[suite]]\nname = \"core\"\ncommand = \"x\"\ntimeout = \"soon\"\n",
       "testfarm.toml:4:11: suite 'core': key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"negative timeout", "[[suite]]\nname = \"core\"\ncommand = \"x\"\ntimeout = -5\n",
       "testfarm.toml:4:11: suite 'core': key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"negative float timeout", "[[suite]]\ncommand = \"x\"\ntimeout = -0.5\n",
       "testfarm.toml:3:11: suite #1: key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"negative string timeout", "[[suite]]\ncommand = \"x\"\ntimeout = \"-1s\"\n",
       "testfarm.toml:3:11: suite #1: key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"infinite timeout", "[[suite]]\ncommand = \"x\"\ntimeout = inf\n",
       "testfarm.toml:3:11: suite #1: key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"boolean timeout", "[[suite]]\ncommand = \"x\"\ntimeout = true\n",
       "testfarm.toml:3:11: suite #1: key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"defaults timeout", "[defaults]\ntimeout = \"forever\"\n\n[[suite]]\ncommand = \"x\"\n",
       "testfarm.toml:2:11: [defaults]: key 'timeout': expected a duration like \"30s\" or a "
       "number of seconds"},
      {"defaults not a table", "defaults = 3\n[[suite]]\ncommand = \"x\"\n",
       "testfarm.toml:1:12: key 'defaults': expected a table, got an integer"},
      {"suite not an array", "[suite]\ncommand = \"x\"\n",
       "testfarm.toml:1:1: key 'suite': expected [[suite]] tables, got a table"},
      {"suite element not a table", "suite = [1]\n",
       "testfarm.toml:1:10: suite #1: expected a table, got an integer"},
      {"missing command", "[[suite]]\ncommand = \"a\"\n\n[[suite]]\nname = \"b\"\nargs = []\n",
       "testfarm.toml:4:1: suite 'b': key 'command' is required"},
      {"missing command unnamed", "[[suite]]\nargs = [\"x\"]\n",
       "testfarm.toml:1:1: suite #1: key 'command' is required"},
      {"duplicate names",
       "[[suite]]\nname = \"core\"\ncommand = \"a\"\n\n[[suite]]\nname = \"core\"\ncommand = "
       "\"b\"\n",
       "testfarm.toml:6:8: suite 'core': key 'name': duplicate suite name, also declared at "
       "testfarm.toml:1"},
      {"duplicate default names", "[[suite]]\ncommand = \"a/t\"\n\n[[suite]]\ncommand = \"b/t\"\n",
       "testfarm.toml:4:1: suite 't': key 'name': duplicate suite name, also declared at "
       "testfarm.toml:1 (set a distinct `name`)"},
      {"no suites", "", "testfarm.toml: no [[suite]] entries"},
      {"only defaults", "[defaults]\ntimeout = 3\n", "testfarm.toml: no [[suite]] entries"},
      {"empty suite array", "suite = []\n", "testfarm.toml: no [[suite]] entries"},
  };
  for (const BadCase& c : cases) {
    EXPECT_EQ(ErrorOf(c.text), c.message) << c.what;
  }
}

TEST(Manifest, UnknownKeysAreWarningsInDocumentOrder) {
  const char* text = R"(colour = "blue"
[defaults]
timout = "3s"

[[suite]]
name = "core"
command = "core_test"
zeta = 1
alpha = 2

[[suite]]
command = "b"
priority = 3
)";
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites = Parse(text, &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_EQ(suites->size(), 2u);
  EXPECT_FALSE((*suites)[0].timeout.has_value());
  EXPECT_THAT(warnings,
              ElementsAre("testfarm.toml:1:1: unknown key 'colour' (ignored)",
                          "testfarm.toml:3:1: unknown key 'timout' in [defaults] (ignored)",
                          "testfarm.toml:8:1: unknown key 'zeta' in suite 'core' (ignored)",
                          "testfarm.toml:9:1: unknown key 'alpha' in suite 'core' (ignored)",
                          "testfarm.toml:13:1: unknown key 'priority' in suite #2 (ignored)"));
}

TEST(Manifest, SuiteOnlyKeysInDefaultsAreWarnings) {
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites =
      Parse("[defaults]\ncommand = \"x\"\n[[suite]]\ncommand = \"y\"\n", &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_THAT((*suites)[0].command, ElementsAre("/proj/y"));
  EXPECT_THAT(warnings,
              ElementsAre("testfarm.toml:2:1: unknown key 'command' in [defaults] (ignored)"));
}

TEST(Manifest, WarningsMayBeNull) {
  Result<std::vector<SuiteSpec>> suites = Parse("x = 1\n[[suite]]\ncommand = \"y\"\n", nullptr);
  EXPECT_TRUE(suites.ok());
}

// A temporary directory, removed with everything in it.

TEST(ManifestFile, ResolvesAgainstTheFilesFolder) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  fs::path file = dir.path() / "testfarm.toml";
  std::ofstream(file) << "[[suite]]\ncommand = \"bin/t\"\nbogus = 1\n";
  std::vector<std::string> warnings;
  Result<std::vector<SuiteSpec>> suites = ParseManifestFile(file, &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_THAT((*suites)[0].command, ElementsAre((dir.path() / "bin/t").string()));
  EXPECT_EQ((*suites)[0].origin, file.string() + ":1");
  EXPECT_THAT(warnings,
              ElementsAre(file.string() + ":3:1: unknown key 'bogus' in suite #1 (ignored)"));
}

TEST(ManifestFile, ErrorsNameTheFile) {
  TempDir dir;
  fs::path file = dir.path() / "testfarm.toml";
  std::ofstream(file) << "[[suite]]\ncommand = 5\n";
  Result<std::vector<SuiteSpec>> suites = ParseManifestFile(file, nullptr);
  ASSERT_FALSE(suites.ok());
  EXPECT_EQ(suites.error().message,
            file.string() +
                ":2:11: suite #1: key 'command': expected a non-empty string, got an integer");
}

TEST(ManifestFile, MissingOrUnreadable) {
  TempDir dir;
  Result<std::vector<SuiteSpec>> missing = ParseManifestFile(dir.path() / "nope.toml", nullptr);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().message,
            "cannot read " + (dir.path() / "nope.toml").string() + ": No such file or directory");

  Result<std::vector<SuiteSpec>> directory = ParseManifestFile(dir.path(), nullptr);
  ASSERT_FALSE(directory.ok());
  EXPECT_EQ(directory.error().message, "cannot read " + dir.path().string() + ": Is a directory");
}

TEST(ManifestFile, RelativePathResolvesAgainstTheCurrentDirectory) {
  TempDir dir;
  std::ofstream(dir.path() / "testfarm.toml") << "[[suite]]\ncommand = \"t\"\n";
  fs::path previous = fs::current_path();
  fs::current_path(dir.path());
  Result<std::vector<SuiteSpec>> suites = ParseManifestFile("testfarm.toml", nullptr);
  fs::current_path(previous);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  // Absolute, so neither PATH nor a suite's cwd changes what runs.
  EXPECT_THAT((*suites)[0].command, ElementsAre((fs::canonical(dir.path()) / "t").string()));
  EXPECT_EQ((*suites)[0].origin, "testfarm.toml:1");
}

}  // namespace
}  // namespace testfarm::coordinator

namespace testfarm::coordinator {
namespace {

TEST(ManifestRequires, DefaultsAndSuitesMergeRequiredLabels) {
  std::vector<std::string> warnings;
  auto suites = ParseManifestText(
      "[defaults]\nrequires = { arch = \"x86_64\" }\n\n[[suite]]\ncommand = \"t\"\n"
      "requires = { gpu = \"1\" }\n",
      "testfarm.toml", "/base", &warnings);
  ASSERT_TRUE(suites.ok()) << suites.error().message;
  EXPECT_TRUE(warnings.empty());
  EXPECT_EQ((*suites)[0].required_labels,
            (std::map<std::string, std::string>{{"arch", "x86_64"}, {"gpu", "1"}}));
  auto bad = ParseManifestText("[[suite]]\ncommand = \"t\"\nrequires = { gpu = 1 }\n",
                               "testfarm.toml", "/base", &warnings);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("testfarm.toml:3:"), std::string::npos) << bad.error().message;
  EXPECT_NE(bad.error().message.find("requires"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace testfarm::coordinator
