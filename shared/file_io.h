#pragma once
// Reading a whole file into memory, with a bound, and an error that names the file; reading a
// piece of an open file.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "shared/result.h"

namespace testfarm {

// The file's bytes. Errors: "cannot read FILE: why" (missing, a directory, unreadable, or
// larger than `max_bytes`).
Result<std::string> ReadWholeFile(const std::filesystem::path& file, std::size_t max_bytes);
// The same into `*out` (replacing its content, reusing its memory: a caller reading many files
// in turn allocates once). On error `*out` is unspecified.
Status ReadWholeFileInto(const std::filesystem::path& file, std::size_t max_bytes,
                         std::string* out);

// Up to `length` bytes of `fd` from `offset` (fewer only at the end of the file), retrying
// interrupted and short reads. The error is why (errno's text); the caller names the file.
Result<std::string> ReadAt(int fd, uint64_t offset, std::size_t length);

}  // namespace testfarm
