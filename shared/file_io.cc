#include "shared/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm {

Result<std::string> ReadWholeFile(const std::filesystem::path& file, std::size_t max_bytes) {
  auto failure = [&](const std::string& reason) {
    return Error{"cannot read " + file.string() + ": " + reason};
  };
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return failure(ErrnoText(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return failure(ErrnoText(errno));
  if (S_ISDIR(st.st_mode)) return failure(ErrnoText(EISDIR));
  std::string limit = "larger than " + std::to_string(max_bytes >> 20) + " MiB";
  if (static_cast<std::size_t>(st.st_size) > max_bytes) return failure(limit);
  std::string text;
  // One read for a regular file of known size; files that do not know theirs grow as they go.
  text.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[64 * 1024];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failure(ErrnoText(errno));
    if (n == 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > max_bytes) return failure(limit);
  }
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
