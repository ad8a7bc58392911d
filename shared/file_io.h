#pragma once
// Reading a whole file into memory, with a bound, and an error that names the file.
#include <cstddef>
#include <filesystem>
#include <string>

#include "shared/result.h"

namespace testfarm {

// The file's bytes. Errors: "cannot read FILE: why" (missing, a directory, unreadable, or
// larger than `max_bytes`).
Result<std::string> ReadWholeFile(const std::filesystem::path& file, std::size_t max_bytes);

}  // namespace testfarm
