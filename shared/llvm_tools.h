#pragma once
// Finding LLVM's command-line tools (llvm-profdata, llvm-cov): the plain name on PATH, else a
// versioned one (llvm-cov-19, ..., llvm-cov-11), newest first, as Debian installs them.
#include <string>

#include "shared/result.h"

namespace testfarm {

// `explicit_path` (from a command-line option) wins when given, and must be executable. The
// error says what was looked for and which option to give.
Result<std::string> FindLlvmTool(const std::string& name, const std::string& explicit_path,
                                 const std::string& option);

}  // namespace testfarm
