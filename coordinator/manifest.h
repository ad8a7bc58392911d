#pragma once
// testfarm.toml: suites declared by hand.
//
//   [defaults]                     # optional; applies to every suite
//   timeout = "30s"                # string duration ("500ms", "2m") or a number of seconds
//   env = { LANG = "C" }
//   labels = ["unit"]
//
//   [[suite]]
//   name = "core"                  # optional; default: the command's basename
//   command = "build/core_test"    # required: a path, resolved against the manifest's folder
//   args = ["--verbose"]           # optional
//   kind = "gtest"                 # "gtest" | "plain" | "auto" (default)
//   env = { CORE_DATA = "data" }
//   cwd = "build"                  # resolved against the manifest's folder
//   timeout = 60
//   labels = ["fast", "core"]
//   data = ["data/fixtures.bin"]   # files the suite needs, resolved against the manifest's folder
//
// Errors name the file, line and column, and the key: "testfarm.toml:7:11: suite 'core': key
// 'timeout': expected a duration like \"30s\" or a number of seconds". Unknown keys are warnings.
#include <filesystem>
#include <string>
#include <vector>

#include "coordinator/suite.h"
#include "shared/result.h"

namespace testfarm::coordinator {

// `warnings` receives one line per unknown key (file:line:column: ...).
Result<std::vector<SuiteSpec>> ParseManifestFile(const std::filesystem::path& file,
                                                 std::vector<std::string>* warnings);
// For tests: `display_path` names the file in messages; relative paths resolve against `base_dir`.
Result<std::vector<SuiteSpec>> ParseManifestText(const std::string& text,
                                                 const std::string& display_path,
                                                 const std::filesystem::path& base_dir,
                                                 std::vector<std::string>* warnings);

}  // namespace testfarm::coordinator
