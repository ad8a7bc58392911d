#include "shared/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm {

Status ReadWholeFileInto(const std::filesystem::path& file, std::size_t max_bytes,
                         std::string* out) {
  auto failure = [&](const std::string& reason) {
    return Error{"cannot read " + file.string() + ": " + reason};
  };
  out->clear();
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failure(ErrnoText(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failure(ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) return failure(ErrnoText(EISDIR));
  std::string limit = "larger than " + std::to_string(max_bytes >> 20) + " MiB";
  if (static_cast<std::size_t>(st.st_size) > max_bytes) return failure(limit);
  // Straight into the string: the size it says, then more for files that do not know theirs
  // (or grew), a block at a time.
  constexpr std::size_t kBlock = 64 * 1024;
  std::size_t have = 0;
  out->resize(static_cast<std::size_t>(st.st_size) + 1);  // +1: the read that sees the end
  for (;;) {
    if (have == out->size()) {
      if (have > max_bytes) return failure(limit);
      out->resize(have + kBlock);
    }
    ssize_t n = ::read(fd.get(), out->data() + have, out->size() - have);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure(ErrnoText(errno));
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  if (have > max_bytes) return failure(limit);
  out->resize(have);
  return Ok{};
}

Result<std::string> ReadWholeFile(const std::filesystem::path& file, std::size_t max_bytes) {
  std::string text;
  if (Status read = ReadWholeFileInto(file, max_bytes, &text); !read) return read.error();
  return text;
}

Result<std::string> ReadAt(int fd, uint64_t offset, std::size_t length) {
  std::string data(length, '\0');
  std::size_t got = 0;
  while (got < length) {
    ssize_t n = ::pread(fd, data.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{ErrnoText(errno)};
    if (n == 0) break;  // the end of the file
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

}  // namespace testfarm
