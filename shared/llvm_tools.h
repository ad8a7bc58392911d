#pragma once
// Finding LLVM's command-line tools (llvm-profdata, llvm-cov): the plain name on PATH, else a
// versioned one (llvm-cov-30, ..., llvm-cov-11), newest first, as Debian installs them.
#include <string>

#include "shared/result.h"

namespace testfarm {

// The first executable (not a directory) named `name` in $PATH's directories, or "".
std::string FindOnPath(const std::string& name);

// `explicit_path` (from a command-line option) wins when given, and must be executable. The
// error says what was looked for and which option to give.
Result<std::string> FindLlvmTool(const std::string& name, const std::string& explicit_path,
                                 const std::string& option);

// `name` from the same LLVM as `sibling` (another tool's path): the same directory and version
// suffix ("/usr/bin/llvm-profdata-14" -> "/usr/bin/llvm-cov-14"), if it is there; else as
// FindLlvmTool. Profiles are read by tools of the version that wrote them.
Result<std::string> FindSiblingLlvmTool(const std::string& name, const std::string& sibling,
                                        const std::string& explicit_path,
                                        const std::string& option);

}  // namespace testfarm
