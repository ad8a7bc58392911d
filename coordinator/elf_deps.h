#pragma once
// The shared libraries a test executable loads from the build tree, so that a coordinator can
// ship them along with the executable to workers that do not share its filesystem. The ELF
// files are parsed here (headers, the dynamic section and section names only, read with pread),
// and the dynamic loader's search is replayed: DT_RPATH, DT_RUNPATH and $ORIGIN, as glibc's
// ld.so does. HasSection tells whether a file has a section of a given name (e.g. coverage).
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "shared/result.h"

namespace testfarm::coordinator {

struct ElfDynamic {
  std::vector<std::string> needed;   // DT_NEEDED, in order
  std::vector<std::string> rpath;    // DT_RPATH split on ':' (raw, $ORIGIN not expanded)
  std::vector<std::string> runpath;  // DT_RUNPATH split on ':'
};

// The dynamic section of `file`. ELFCLASS32 and ELFCLASS64, little-endian. The dynamic section
// is found through the section headers (SHT_DYNAMIC and its sh_link string table) or, in a file
// without section headers, through the program headers (PT_DYNAMIC, and DT_STRTAB mapped to a
// file offset through PT_LOAD). A path list is split on ':' keeping empty elements, so an
// empty DT_RUNPATH is {""}: present, and so disabling DT_RPATH as it does for ld.so.
// nullopt: the file is not an ELF file (e.g. a shell script) -> nothing to resolve.
// Error: unreadable, or an ELF file that is malformed/truncated (message names the file and what
// is wrong); a big-endian ELF file is an error too ("unsupported").
// ELF files without a dynamic section (static binaries) give an empty ElfDynamic.
Result<std::optional<ElfDynamic>> ReadElfDynamic(const std::filesystem::path& file);

// Whether the ELF file `file` has a section named `name` (e.g. "__llvm_covmap": built with
// clang's -fcoverage-mapping), by the section header string table (e_shstrndx, or section 0's
// sh_link when that is SHN_XINDEX). ELFCLASS32 and ELFCLASS64, little-endian. A file that is not
// ELF, or has no section headers or no section name string table, has none: false.
// Error: unreadable, or an ELF file that is malformed/truncated (the message names the file);
// a big-endian ELF file is an error too ("unsupported"), as for ReadElfDynamic.
Result<bool> HasSection(const std::filesystem::path& file, const std::string& name);

// The shared libraries `executable` loads from outside the system, found the way ld.so would:
// each DT_NEEDED name (containing no '/') is looked up in the DT_RPATH dirs of the object that
// needs it and of the objects that loaded that one, up to the executable (only while the
// object has no DT_RUNPATH), then in the object's own DT_RUNPATH dirs; $ORIGIN and ${ORIGIN}
// expand to the directory of the object that holds the entry (for the executable, the
// directory of its canonical path, as ld.so takes it from /proc/self/exe). A candidate that is
// missing, not a regular file, or of another ELF class or machine is passed over, as ld.so
// does; so is a non-ELF file (ld.so would fail to load it, which the test run reports). An
// absolute DT_NEEDED path is taken as it is.
// A name not found there is a system library (ld.so.cache / default dirs) and is skipped; so
// is a library found under /lib, /lib32, /lib64, /libx32 or /usr (canonical path), and its own
// dependencies are not followed. Found libraries are followed transitively (breadth first, like
// ld.so); a name already loaded (as a DT_NEEDED name or a DT_SONAME) is not looked up again,
// and a file already loaded under another name is listed under that name too (the remote
// loader opens it by that name) but not followed again, so cycles end.
// Each library appears once, as an absolute, lexically normal path; symlinks are not resolved
// (this is the name the loader looks for, e.g. libfoo.so.1, which may be a symlink).
// Not replayed: LD_LIBRARY_PATH and LD_PRELOAD (the worker's environment decides them), a
// directory that is relative after expansion (relative to the test's working directory) or
// that holds $LIB or $PLATFORM, and a DT_NEEDED name holding a '/' that is not absolute: those
// are skipped. Non-ELF executable -> empty list. Error: an unreadable executable, or a
// malformed ELF file met on the way (the message names it).
Result<std::vector<std::filesystem::path>> BuildTreeLibraries(
    const std::filesystem::path& executable);

// Under /bin, /sbin, /lib, /lib32, /lib64, /libx32 or /usr once symlinks are resolved: the
// system's own files, which every worker has (and which are never shipped).
bool IsSystemPath(const std::string& path);

}  // namespace testfarm::coordinator
