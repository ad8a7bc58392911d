#include "coordinator/elf_deps.h"

#include <elf.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <compare>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "shared/errno_text.h"
#include "shared/unique_fd.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;

// Bounds against absurd (or hostile) files: real ones stay far below.
constexpr std::uint64_t kMaxSections = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxProgramHeaders = std::uint64_t{1} << 16;
constexpr std::uint64_t kMaxDynamicEntries = std::uint64_t{1} << 20;
constexpr std::uint64_t kMaxStringBytes = std::uint64_t{1} << 20;  // one name or path list
constexpr std::size_t kMaxLibraries = 10000;
constexpr std::size_t kMaxProbes = std::size_t{1} << 20;  // candidate files looked at

struct Elf32 {
  using Ehdr = Elf32_Ehdr;
  using Shdr = Elf32_Shdr;
  using Phdr = Elf32_Phdr;
  using Dyn = Elf32_Dyn;
};

struct Elf64 {
  using Ehdr = Elf64_Ehdr;
  using Shdr = Elf64_Shdr;
  using Phdr = Elf64_Phdr;
  using Dyn = Elf64_Dyn;
};

// What the search needs of an ELF file besides its dynamic section.
struct ElfInfo {
  unsigned char elf_class = ELFCLASSNONE;
  std::uint16_t machine = EM_NONE;
  ElfDynamic dynamic;
  std::vector<std::string> sonames;  // DT_SONAME (at most one in practice)
};

std::string Hex(std::uint64_t value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  do {
    text.insert(text.begin(), kDigits[value & 0xf]);
    value >>= 4;
  } while (value != 0);
  return "0x" + text;
}

// An open ELF file of known size, read with pread. Every read is checked against the size, so
// an offset or a size taken from the file can never reach past its end.
class ElfFile {
 public:
  ElfFile(int fd, std::uint64_t size, const fs::path& path) : fd_(fd), size_(size), path_(path) {}

  std::uint64_t size() const { return size_; }

  Error Malformed(const std::string& what) const {
    return Error{"malformed ELF file " + path_.string() + ": " + what};
  }

  Error Truncated(std::string_view what, std::uint64_t offset, std::uint64_t length) const {
    return Error{"truncated or malformed ELF file " + path_.string() + ": " + std::string(what) +
                 " at offset " + std::to_string(offset) + ", " + std::to_string(length) +
                 " bytes, beyond the end of the file (" + std::to_string(size_) + " bytes)"};
  }

  // Reads `length` bytes at `offset` into `out`, which has room for them.
  std::optional<Error> Read(std::uint64_t offset, std::uint64_t length, void* out,
                            std::string_view what) const {
    if (offset > size_ || length > size_ - offset) return Truncated(what, offset, length);
    auto* bytes = static_cast<unsigned char*>(out);
    while (length > 0) {
      ssize_t n = ::pread(fd_, bytes, static_cast<std::size_t>(length), static_cast<off_t>(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Error{"cannot read " + path_.string() + ": " + ErrnoText(errno)};
      if (n == 0) return Truncated(what, offset, length);  // the file shrank under us
      bytes += n;
      offset += static_cast<std::uint64_t>(n);
      length -= static_cast<std::uint64_t>(n);
    }
    return std::nullopt;
  }

  // `count` entries of T at `offset`; the caller bounds `count`.
  template <typename T>
  Result<std::vector<T>> ReadArray(std::uint64_t offset, std::uint64_t count,
                                   std::string_view what) const {
    if (count > size_ / sizeof(T)) return Truncated(what, offset, count * sizeof(T));
    std::vector<T> items(static_cast<std::size_t>(count));
    if (std::optional<Error> error = Read(offset, count * sizeof(T), items.data(), what)) {
      return *error;
    }
    return items;
  }

  // The NUL-terminated string at `index` in the string table of `table_size` bytes at
  // `table_offset` (already checked to lie within the file), called `table_name` in messages.
  // Read in chunks: a dynamic string table also holds every exported symbol's name, and only a
  // few strings are wanted.
  Result<std::string> String(std::uint64_t table_offset, std::uint64_t table_size,
                             std::uint64_t index, std::string_view what,
                             std::string_view table_name) const {
    if (index >= table_size) {
      return Malformed(std::string(what) + " string at " + std::to_string(index) +
                       " lies outside the " + std::string(table_name) + " (" +
                       std::to_string(table_size) + " bytes)");
    }
    std::string text;
    std::uint64_t at = index;
    char chunk[512];
    while (at < table_size) {
      std::uint64_t length = std::min<std::uint64_t>(sizeof chunk, table_size - at);
      if (std::optional<Error> error = Read(table_offset + at, length, chunk, table_name)) {
        return *error;
      }
      std::string_view piece(chunk, static_cast<std::size_t>(length));
      std::size_t nul = piece.find('\0');
      text.append(piece.substr(0, nul));
      if (nul != piece.npos) return text;
      if (text.size() > kMaxStringBytes) {
        return Malformed(std::string(what) + " string at " + std::to_string(index) +
                         " is longer than " + std::to_string(kMaxStringBytes) + " bytes");
      }
      at += length;
    }
    return Malformed(std::string(what) + " string at " + std::to_string(index) +
                     " is not terminated within the " + std::string(table_name));
  }

 private:
  int fd_;
  std::uint64_t size_;
  fs::path path_;
};

// "a::b" -> {"a", "", "b"}; "" -> {""}.
std::vector<std::string> SplitPathList(std::string_view list) {
  std::vector<std::string> parts;
  while (true) {
    std::size_t colon = list.find(':');
    parts.emplace_back(list.substr(0, colon));
    if (colon == list.npos) return parts;
    list.remove_prefix(colon + 1);
  }
}

template <typename Elf>
Result<std::vector<typename Elf::Dyn>> ReadDynamicEntries(const ElfFile& file, std::uint64_t offset,
                                                          std::uint64_t size) {
  using Dyn = typename Elf::Dyn;
  if (size % sizeof(Dyn) != 0) {
    return file.Malformed("dynamic section size " + std::to_string(size) +
                          " is not a multiple of its entry size " + std::to_string(sizeof(Dyn)));
  }
  std::uint64_t count = size / sizeof(Dyn);
  if (count > kMaxDynamicEntries) {
    return file.Malformed("dynamic section has " + std::to_string(count) + " entries (at most " +
                          std::to_string(kMaxDynamicEntries) + ")");
  }
  return file.ReadArray<Dyn>(offset, count, "dynamic section");
}

bool UsesStrings(std::int64_t tag) {
  return tag == DT_NEEDED || tag == DT_RPATH || tag == DT_RUNPATH || tag == DT_SONAME;
}

// Fills `info->dynamic` and `info->sonames` from the entries up to DT_NULL, with their strings
// from the string table of `table_size` bytes at file offset `table_offset`.
template <typename Elf>
std::optional<Error> DecodeDynamic(const ElfFile& file,
                                   const std::vector<typename Elf::Dyn>& entries,
                                   std::uint64_t table_offset, std::uint64_t table_size,
                                   ElfInfo* info) {
  bool table_checked = false;
  for (const typename Elf::Dyn& entry : entries) {
    std::int64_t tag = entry.d_tag;
    if (tag == DT_NULL) break;
    if (!UsesStrings(tag)) continue;
    if (!table_checked) {
      if (table_offset > file.size() || table_size > file.size() - table_offset) {
        return file.Truncated("dynamic string table", table_offset, table_size);
      }
      table_checked = true;
    }
    const char* what = tag == DT_NEEDED   ? "DT_NEEDED"
                       : tag == DT_RPATH  ? "DT_RPATH"
                       : tag == DT_SONAME ? "DT_SONAME"
                                          : "DT_RUNPATH";
    Result<std::string> text =
        file.String(table_offset, table_size, entry.d_un.d_val, what, "dynamic string table");
    if (!text) return text.error();
    if (tag == DT_NEEDED) {
      info->dynamic.needed.push_back(std::move(*text));
    } else if (tag == DT_SONAME) {
      info->sonames.push_back(std::move(*text));
    } else {
      std::vector<std::string>& list =
          tag == DT_RPATH ? info->dynamic.rpath : info->dynamic.runpath;
      for (std::string& dir : SplitPathList(*text)) list.push_back(std::move(dir));
    }
  }
  return std::nullopt;
}

// No usable section headers: the dynamic segment, with DT_STRTAB's address mapped to a file
// offset through the PT_LOAD segment that holds it.
template <typename Elf>
Result<ElfInfo> ReadThroughProgramHeaders(const ElfFile& file, const typename Elf::Ehdr& header,
                                          const std::vector<typename Elf::Shdr>& sections,
                                          ElfInfo info) {
  using Phdr = typename Elf::Phdr;
  if (header.e_phoff == 0) return info;
  std::uint64_t count = header.e_phnum;
  if (count == PN_XNUM) {  // the real count is in section 0's sh_info
    if (sections.empty()) {
      return file.Malformed("e_phnum is PN_XNUM but there are no section headers");
    }
    count = sections[0].sh_info;
  }
  if (count == 0) return info;
  if (header.e_phentsize != sizeof(Phdr)) {
    return file.Malformed("program header entry size " + std::to_string(header.e_phentsize) +
                          ", expected " + std::to_string(sizeof(Phdr)));
  }
  if (count > kMaxProgramHeaders) {
    return file.Malformed(std::to_string(count) + " program headers (at most " +
                          std::to_string(kMaxProgramHeaders) + ")");
  }
  Result<std::vector<Phdr>> segments =
      file.ReadArray<Phdr>(header.e_phoff, count, "program headers");
  if (!segments) return segments.error();
  auto dynamic = std::find_if(segments->begin(), segments->end(),
                              [](const Phdr& segment) { return segment.p_type == PT_DYNAMIC; });
  if (dynamic == segments->end()) return info;  // statically linked
  Result<std::vector<typename Elf::Dyn>> entries =
      ReadDynamicEntries<Elf>(file, dynamic->p_offset, dynamic->p_filesz);
  if (!entries) return entries.error();

  std::optional<std::uint64_t> table_address;
  std::optional<std::uint64_t> table_size;
  bool uses_strings = false;
  for (const typename Elf::Dyn& entry : *entries) {
    std::int64_t tag = entry.d_tag;
    if (tag == DT_NULL) break;
    if (tag == DT_STRTAB) table_address = entry.d_un.d_ptr;
    if (tag == DT_STRSZ) table_size = entry.d_un.d_val;
    uses_strings = uses_strings || UsesStrings(tag);
  }
  if (!uses_strings) return info;
  if (!table_address || !table_size) {
    return file.Malformed("the dynamic segment has no DT_STRTAB or no DT_STRSZ");
  }
  for (const Phdr& segment : *segments) {
    if (segment.p_type != PT_LOAD || *table_address < segment.p_vaddr ||
        *table_address - segment.p_vaddr >= segment.p_filesz) {
      continue;
    }
    std::uint64_t delta = *table_address - segment.p_vaddr;
    if (*table_size > segment.p_filesz - delta) {
      return file.Malformed("the dynamic string table (DT_STRSZ " + std::to_string(*table_size) +
                            ") extends past its PT_LOAD segment");
    }
    if (segment.p_offset > std::numeric_limits<std::uint64_t>::max() - delta) {
      return file.Malformed("PT_LOAD segment offset out of range");
    }
    if (std::optional<Error> error =
            DecodeDynamic<Elf>(file, *entries, segment.p_offset + delta, *table_size, &info)) {
      return *error;
    }
    return info;
  }
  return file.Malformed("DT_STRTAB address " + Hex(*table_address) +
                        " is in no PT_LOAD segment of the file");
}

// The ELF header and the section headers (none when e_shoff is 0).
template <typename Elf>
struct Headers {
  typename Elf::Ehdr header{};
  std::vector<typename Elf::Shdr> sections;
};

template <typename Elf>
Result<Headers<Elf>> ReadHeaders(const ElfFile& file) {
  using Shdr = typename Elf::Shdr;
  Headers<Elf> headers;
  if (std::optional<Error> error =
          file.Read(0, sizeof headers.header, &headers.header, "ELF header")) {
    return *error;
  }
  const typename Elf::Ehdr& header = headers.header;
  if (header.e_shoff == 0) return headers;
  if (header.e_shentsize != sizeof(Shdr)) {
    return file.Malformed("section header entry size " + std::to_string(header.e_shentsize) +
                          ", expected " + std::to_string(sizeof(Shdr)));
  }
  std::uint64_t count = header.e_shnum;
  if (count == 0) {  // 0 or more than SHN_LORESERVE sections: the count is section 0's sh_size
    Shdr first{};
    if (std::optional<Error> error =
            file.Read(header.e_shoff, sizeof first, &first, "section header 0")) {
      return *error;
    }
    count = first.sh_size;
  }
  if (count > kMaxSections) {
    return file.Malformed(std::to_string(count) + " section headers (at most " +
                          std::to_string(kMaxSections) + ")");
  }
  Result<std::vector<Shdr>> read = file.ReadArray<Shdr>(header.e_shoff, count, "section headers");
  if (!read) return read.error();
  headers.sections = std::move(*read);
  return headers;
}

template <typename Elf>
Result<ElfInfo> ReadElfInfoAs(const ElfFile& file) {
  using Shdr = typename Elf::Shdr;
  Result<Headers<Elf>> headers = ReadHeaders<Elf>(file);
  if (!headers) return headers.error();
  const typename Elf::Ehdr& header = headers->header;
  const std::vector<Shdr>& sections = headers->sections;
  ElfInfo info;
  info.elf_class = header.e_ident[EI_CLASS];
  info.machine = header.e_machine;

  for (const Shdr& section : sections) {
    if (section.sh_type != SHT_DYNAMIC) continue;
    if (section.sh_link >= sections.size()) {
      return file.Malformed("the dynamic section's string table is section " +
                            std::to_string(section.sh_link) + " of " +
                            std::to_string(sections.size()));
    }
    const Shdr& strings = sections[section.sh_link];
    if (strings.sh_type != SHT_STRTAB) {
      return file.Malformed("the dynamic section's sh_link " + std::to_string(section.sh_link) +
                            " is not a string table");
    }
    Result<std::vector<typename Elf::Dyn>> entries =
        ReadDynamicEntries<Elf>(file, section.sh_offset, section.sh_size);
    if (!entries) return entries.error();
    if (std::optional<Error> error =
            DecodeDynamic<Elf>(file, *entries, strings.sh_offset, strings.sh_size, &info)) {
      return *error;
    }
    return info;
  }
  // No section headers, or none of type SHT_DYNAMIC (a static binary, or stripped headers).
  return ReadThroughProgramHeaders<Elf>(file, header, sections, std::move(info));
}

// Runs `read(file, Elf64{})` or `read(file, Elf32{})`, a Result<T>, on the open file `fd` as
// its ELF class says; nullopt when it is not an ELF file. Errors: unreadable, not a regular
// file, a bad identification, big-endian.
template <typename T, typename Reader>
Result<std::optional<T>> ReadElfFrom(int fd, const fs::path& path, const Reader& read) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    return Error{"cannot read " + path.string() + ": " + ErrnoText(errno)};
  }
  if (!S_ISREG(st.st_mode)) return Error{"cannot read " + path.string() + ": not a regular file"};
  ElfFile file(fd, static_cast<std::uint64_t>(st.st_size), path);
  unsigned char ident[EI_NIDENT] = {};
  if (file.size() < SELFMAG) return std::optional<T>();
  if (std::optional<Error> error = file.Read(0, SELFMAG, ident, "ELF magic")) return *error;
  if (std::memcmp(ident, ELFMAG, SELFMAG) != 0) return std::optional<T>();
  if (std::optional<Error> error = file.Read(0, EI_NIDENT, ident, "ELF identification")) {
    return *error;
  }
  if (ident[EI_DATA] == ELFDATA2MSB) {
    return Error{"unsupported ELF file " + path.string() + ": big-endian"};
  }
  if (ident[EI_DATA] != ELFDATA2LSB) {
    return file.Malformed("invalid data encoding " + std::to_string(ident[EI_DATA]));
  }
  if constexpr (std::endian::native != std::endian::little) {
    return Error{"unsupported ELF file " + path.string() + ": little-endian on a big-endian host"};
  }
  if (ident[EI_VERSION] != EV_CURRENT) {
    return file.Malformed("invalid version " + std::to_string(ident[EI_VERSION]));
  }
  if (ident[EI_CLASS] != ELFCLASS64 && ident[EI_CLASS] != ELFCLASS32) {
    return file.Malformed("invalid class " + std::to_string(ident[EI_CLASS]));
  }
  Result<T> result = ident[EI_CLASS] == ELFCLASS64 ? read(file, Elf64{}) : read(file, Elf32{});
  if (!result) return result.error();
  return std::optional<T>(std::move(*result));
}

template <typename T, typename Reader>
Result<std::optional<T>> ReadElf(const fs::path& path, const Reader& read) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));  // a FIFO must not block
  if (!fd) return Error{"cannot read " + path.string() + ": " + ErrnoText(errno)};
  return ReadElfFrom<T>(fd.get(), path, read);
}

constexpr auto kReadElfInfo = [](const ElfFile& file, auto elf) {
  return ReadElfInfoAs<decltype(elf)>(file);
};

Result<std::optional<ElfInfo>> ReadElfInfoFrom(int fd, const fs::path& path) {
  return ReadElfFrom<ElfInfo>(fd, path, kReadElfInfo);
}

Result<std::optional<ElfInfo>> ReadElfInfo(const fs::path& path) {
  return ReadElf<ElfInfo>(path, kReadElfInfo);
}

// --- HasSection ----------------------------------------------------------------------------

// Whether a section is named `name`, by the section header string table: e_shstrndx, or
// section 0's sh_link when that is SHN_XINDEX. No section headers or no string table (SHN_UNDEF)
// -> no names, false.
template <typename Elf>
Result<bool> HasSectionAs(const ElfFile& file, const std::string& name) {
  using Shdr = typename Elf::Shdr;
  Result<Headers<Elf>> headers = ReadHeaders<Elf>(file);
  if (!headers) return headers.error();
  const std::vector<Shdr>& sections = headers->sections;
  std::uint64_t index = headers->header.e_shstrndx;
  if (sections.empty() || index == SHN_UNDEF) return false;
  if (index == SHN_XINDEX) {
    index = sections[0].sh_link;
  } else if (index >= SHN_LORESERVE) {
    return file.Malformed("e_shstrndx " + Hex(index) + " is a reserved section index");
  }
  if (index >= sections.size()) {
    return file.Malformed("the section name string table is section " + std::to_string(index) +
                          " of " + std::to_string(sections.size()));
  }
  const Shdr& table = sections[index];
  if (table.sh_type != SHT_STRTAB) {
    return file.Malformed("the section name string table, section " + std::to_string(index) +
                          ", is not a string table");
  }
  if (table.sh_offset > file.size() || table.sh_size > file.size() - table.sh_offset) {
    return file.Truncated("section name string table", table.sh_offset, table.sh_size);
  }
  // Section 0 (SHN_UNDEF) is no section: its fields hold the extended counts.
  for (std::size_t i = 1; i < sections.size(); ++i) {
    Result<std::string> section_name =
        file.String(table.sh_offset, table.sh_size, sections[i].sh_name,
                    "section " + std::to_string(i) + " name", "section name string table");
    if (!section_name) return section_name.error();
    if (*section_name == name) return true;
  }
  return false;
}

// --- BuildTreeLibraries --------------------------------------------------------------------

// One object the loader has loaded, in load order (breadth first from the executable).
struct Loaded {
  std::string origin;  // $ORIGIN: the directory it was found in, as the loader spells it
  ElfInfo elf;
  std::size_t loader;  // the object whose DT_NEEDED loaded it; the executable's own index
};

struct FileId {
  dev_t device;
  ino_t inode;
  auto operator<=>(const FileId&) const = default;
};

// A library file the search settled on.
struct Found {
  std::string path;  // directory + '/' + name, as the loader opens it
  FileId id;
  ElfInfo elf;
};

bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Length of the dynamic string token `name` ("ORIGIN" or "{ORIGIN}") at the start of `text`
// (just after its '$'), 0 if there is none: ld.so's is_dst.
std::size_t TokenLength(std::string_view text, std::string_view name) {
  if (text.starts_with('{')) {
    text.remove_prefix(1);
    return text.starts_with(name) && text.substr(name.size()).starts_with('}') ? name.size() + 2
                                                                               : 0;
  }
  if (!text.starts_with(name)) return 0;
  return text.size() == name.size() || !IsIdentifierChar(text[name.size()]) ? name.size() : 0;
}

// A DT_RPATH/DT_RUNPATH directory with $ORIGIN expanded; nullopt for one this search cannot
// follow: relative (to the test's working directory, unknown here) or holding $LIB or
// $PLATFORM. Trailing slashes are dropped, as ld.so does.
std::optional<std::string> ExpandDirectory(std::string_view dir, std::string_view origin) {
  std::string out;
  for (std::size_t i = 0; i < dir.size();) {
    if (dir[i] != '$') {
      out += dir[i++];
      continue;
    }
    std::string_view rest = dir.substr(i + 1);
    if (std::size_t length = TokenLength(rest, "ORIGIN")) {
      out += origin;
      i += 1 + length;
    } else if (TokenLength(rest, "LIB") != 0 || TokenLength(rest, "PLATFORM") != 0) {
      return std::nullopt;
    } else {
      out += dir[i++];  // not a token: ld.so keeps the '$'
    }
  }
  if (!out.starts_with('/')) return std::nullopt;
  while (out.size() > 1 && out.ends_with('/')) out.pop_back();
  return out;
}

class LibrarySearch {
 public:
  explicit LibrarySearch(const ElfInfo& executable)
      : elf_class_(executable.elf_class), machine_(executable.machine) {}

  // The file ld.so would load for `name` needed by objects[index], or nullopt (a system library
  // or not found).
  Result<std::optional<Found>> Find(const std::vector<Loaded>& objects, std::size_t index,
                                    const std::string& name) {
    if (name.find('/') != name.npos) {
      if (!name.starts_with('/')) return std::optional<Found>();  // relative to the test's cwd
      return Probe(name);
    }
    const Loaded& needer = objects[index];
    // DT_RPATH of the needer and of its loaders up to the executable, unless the needer has a
    // DT_RUNPATH. An object with a DT_RUNPATH has no DT_RPATH for ld.so.
    if (needer.elf.dynamic.runpath.empty()) {
      for (std::size_t i = index;; i = objects[i].loader) {
        const Loaded& object = objects[i];
        if (object.elf.dynamic.runpath.empty()) {
          Result<std::optional<Found>> found =
              FindIn(object.elf.dynamic.rpath, object.origin, name);
          if (!found || *found) return found;
        }
        if (object.loader == i) break;  // the executable
      }
    }
    return FindIn(needer.elf.dynamic.runpath, needer.origin, name);
  }

 private:
  Result<std::optional<Found>> FindIn(const std::vector<std::string>& dirs,
                                      const std::string& origin, const std::string& name) {
    for (const std::string& dir : dirs) {
      std::optional<std::string> expanded = ExpandDirectory(dir, origin);
      if (!expanded) continue;
      Result<std::optional<Found>> found =
          Probe(*expanded == "/" ? "/" + name : *expanded + "/" + name);
      if (!found || *found) return found;
    }
    return std::optional<Found>();
  }

  // The candidate if ld.so would take it: a readable regular ELF file of the executable's class
  // and machine. Anything else is passed over, except a malformed ELF file.
  Result<std::optional<Found>> Probe(const std::string& path) {
    if (++probes_ > kMaxProbes) {
      return Error{"more than " + std::to_string(kMaxProbes) + " candidate library files"};
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return std::optional<Found>();
    Result<std::optional<ElfInfo>> elf = ReadElfInfoFrom(fd.get(), path);
    if (!elf) return elf.error();
    if (!*elf || (*elf)->elf_class != elf_class_ || (*elf)->machine != machine_) {
      return std::optional<Found>();
    }
    return std::optional<Found>(Found{path, FileId{st.st_dev, st.st_ino}, std::move(**elf)});
  }

  unsigned char elf_class_;
  std::uint16_t machine_;
  std::size_t probes_ = 0;
};

}  // namespace

bool IsSystemPath(const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::canonical(path, ec);
  if (ec) return false;
  auto it = canonical.begin();
  if (it == canonical.end() || *it != "/" || ++it == canonical.end()) return false;
  static const std::set<std::string> kSystemTops = {"bin",   "sbin",   "lib", "lib32",
                                                    "lib64", "libx32", "usr"};
  return kSystemTops.contains(it->string());
}

Result<std::optional<ElfDynamic>> ReadElfDynamic(const std::filesystem::path& file) {
  Result<std::optional<ElfInfo>> info = ReadElfInfo(file);
  if (!info) return info.error();
  if (!*info) return std::optional<ElfDynamic>();
  return std::optional<ElfDynamic>(std::move((*info)->dynamic));
}

Result<bool> HasSection(const std::filesystem::path& file, const std::string& name) {
  Result<std::optional<bool>> found =
      ReadElf<bool>(file, [&name](const ElfFile& elf_file, auto elf) {
        return HasSectionAs<decltype(elf)>(elf_file, name);
      });
  if (!found) return found.error();
  return found->value_or(false);  // not an ELF file: no sections
}

Result<std::vector<std::filesystem::path>> BuildTreeLibraries(
    const std::filesystem::path& executable) {
  Result<std::optional<ElfInfo>> root = ReadElfInfo(executable);
  if (!root) return root.error();
  if (!*root) return std::vector<fs::path>();
  // ld.so takes the executable's $ORIGIN from /proc/self/exe: symlinks resolved.
  std::error_code ec;
  fs::path canonical = fs::canonical(executable, ec);
  if (ec) return Error{"cannot resolve " + executable.string() + ": " + ec.message()};
  struct stat st {};
  if (::stat(canonical.c_str(), &st) != 0) {
    return Error{"cannot read " + executable.string() + ": " + ErrnoText(errno)};
  }
  const FileId executable_id{st.st_dev, st.st_ino};

  LibrarySearch search(**root);
  std::vector<Loaded> objects;
  objects.push_back(Loaded{canonical.parent_path().string(), std::move(**root), 0});
  // What ld.so matches a DT_NEEDED name against before searching: the names already asked for
  // (found or not) and the DT_SONAMEs of loaded objects.
  std::set<std::string> names(objects[0].elf.sonames.begin(), objects[0].elf.sonames.end());
  std::set<FileId> loaded_files = {executable_id};
  std::set<fs::path> listed;
  std::vector<fs::path> libraries;

  for (std::size_t index = 0; index < objects.size(); ++index) {
    const std::vector<std::string> needed = objects[index].elf.dynamic.needed;  // objects grows
    for (const std::string& name : needed) {
      if (!names.insert(name).second) continue;
      Result<std::optional<Found>> found = search.Find(objects, index, name);
      if (!found) return found.error();
      if (!*found || IsSystemPath((*found)->path)) continue;
      Found& library = **found;
      if (library.id == executable_id) continue;
      fs::path path = fs::path(library.path).lexically_normal();
      if (listed.insert(path).second) libraries.push_back(path);
      // The same file under another name: ld.so reuses the loaded object.
      if (!loaded_files.insert(library.id).second) continue;
      if (objects.size() >= kMaxLibraries) {
        return Error{executable.string() + " loads more than " + std::to_string(kMaxLibraries) +
                     " libraries"};
      }
      names.insert(library.elf.sonames.begin(), library.elf.sonames.end());
      std::string origin = library.path.substr(0, library.path.rfind('/'));
      if (origin.empty()) origin = "/";
      objects.push_back(Loaded{std::move(origin), std::move(library.elf), index});
    }
  }
  return libraries;
}

}  // namespace testfarm::coordinator
