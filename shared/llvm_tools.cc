#include "shared/llvm_tools.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

namespace testfarm {

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= dirs.size()) {
    std::size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    std::error_code ec;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate, ec)) {
      return candidate;
    }
    start = end + 1;
  }
  return {};
}

Result<std::string> FindLlvmTool(const std::string& name, const std::string& explicit_path,
                                 const std::string& option) {
  if (!explicit_path.empty()) {
    std::string found =
        explicit_path.find('/') == std::string::npos ? FindOnPath(explicit_path) : explicit_path;
    if (found.empty() || ::access(found.c_str(), X_OK) != 0) {
      return Error{option + ": '" + explicit_path + "' is not an executable"};
    }
    return found;
  }
  if (std::string found = FindOnPath(name); !found.empty()) return found;
  for (int version = 30; version >= 11; --version) {
    if (std::string found = FindOnPath(name + "-" + std::to_string(version)); !found.empty()) {
      return found;
    }
  }
  return Error{name + " not found (looked on PATH for " + name + " and " + name +
               "-30 ... -11); install LLVM (Debian: apt-get install llvm) or give " + option};
}

Result<std::string> FindSiblingLlvmTool(const std::string& name, const std::string& sibling,
                                        const std::string& explicit_path,
                                        const std::string& option) {
  if (explicit_path.empty()) {
    std::filesystem::path path(sibling);
    std::string base = path.filename().string();
    std::size_t dash = base.find_last_of('-');
    std::string suffix;
    if (dash != std::string::npos &&
        base.find_first_not_of("0123456789", dash + 1) == std::string::npos) {
      suffix = base.substr(dash);
    }
    std::filesystem::path candidate = path.parent_path() / (name + suffix);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return FindLlvmTool(name, explicit_path, option);
}

}  // namespace testfarm
