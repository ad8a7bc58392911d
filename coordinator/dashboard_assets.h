#pragma once
// The dashboard page's files (coordinator/dashboard/), built into the binary by
// cmake/embed_files.cmake: no file is read at run time and nothing is fetched.
#include <string>
#include <string_view>

namespace testfarm::coordinator {

struct PageAssetFile {
  const char* path;          // "/", "/app.js", "/style.css"
  const char* content_type;  // with its charset
  std::string_view body;
};

// The file served at `path`; null when there is none.
const PageAssetFile* PageAsset(const std::string& path);

}  // namespace testfarm::coordinator
