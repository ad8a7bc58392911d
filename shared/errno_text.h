#pragma once
// The one way to put an errno into words: "No such file or directory". Thread-safe, unlike
// strerror.
#include <string>
#include <system_error>

namespace testfarm {

inline std::string ErrnoText(int error_number) {
  return std::generic_category().message(error_number);
}

}  // namespace testfarm
