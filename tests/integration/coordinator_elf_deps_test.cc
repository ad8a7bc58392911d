// Which build-tree libraries a test executable loads (coordinator/elf_deps): against the real
// fixtures in tests/fixtures/deps (absolute RUNPATH, $ORIGIN, an executable's RPATH inherited
// by its dependency, a dependency cycle), against ELF files crafted here (32-bit, no section
// headers, odd path lists), and against truncated, corrupted and non-ELF files.
#include <elf.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <link.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "coordinator/elf_deps.h"
#include "tests/support/child_process.h"

#ifndef TESTFARM_COVERAGE_FIXTURES
#error "TESTFARM_COVERAGE_FIXTURES (1 or 0) comes from tests/fixtures/CMakeLists.txt"
#endif
#include "shared/unique_fd.h"
#include "tests/support/temp_dir.h"

namespace testfarm::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const fs::path kFixtures = TESTFARM_FIXTURE_DIR;
const fs::path kLib = kFixtures / "lib";
const fs::path kCov = kFixtures / "cov";  // the coverage fixtures (tests/fixtures/coverage)

std::string ReadBytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteBytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << file;
}

std::uint16_t MachineOf(const fs::path& elf_file) {
  std::string bytes = ReadBytes(elf_file);
  Elf64_Ehdr header{};
  if (bytes.size() < sizeof header) return EM_NONE;
  std::memcpy(&header, bytes.data(), sizeof header);
  return header.e_machine;
}

// --- Crafted ELF files ---------------------------------------------------------------------

struct CraftSpec {
  unsigned char elf_class = ELFCLASS64;
  std::uint16_t machine = EM_NONE;
  bool section_headers = true;
  bool dynamic = true;
  std::vector<std::string> needed;
  std::optional<std::string> rpath;
  std::optional<std::string> runpath;
  bool shstrndx_escape = false;  // e_shstrndx SHN_XINDEX, the index in section 0's sh_link
};

struct Crafted {
  std::string bytes;
  std::size_t shoff = 0;         // section headers: [null, .dynstr, .dynamic, .shstrtab]
  std::size_t dynamic = 0;       // .dynamic
  std::size_t dynstr = 0;        // .dynstr
  std::size_t strtab_entry = 0;  // the DT_STRTAB entry in .dynamic
  std::size_t shstrtab = 0;      // .shstrtab, after the section headers
};

constexpr std::size_t kCraftedSections = 4;
constexpr std::size_t kCraftedShstrndx = 3;
// .shstrtab's contents, and where each section's name starts in it.
constexpr char kSectionNames[] = "\0.dynstr\0.dynamic\0.shstrtab";
constexpr std::uint32_t kDynstrName = 1, kDynamicName = 9, kShstrtabName = 18;

constexpr std::uint64_t kBase = 0x10000;

template <typename Ehdr, typename Phdr, typename Shdr, typename Dyn>
Crafted CraftAs(const CraftSpec& spec) {
  std::string strings(1, '\0');
  auto add_string = [&](const std::string& text) {
    std::size_t at = strings.size();
    strings += text;
    strings += '\0';
    return at;
  };
  std::vector<Dyn> entries;
  auto add_entry = [&](std::int64_t tag, std::uint64_t value) {
    Dyn entry{};
    entry.d_tag = static_cast<decltype(entry.d_tag)>(tag);
    entry.d_un.d_val = static_cast<decltype(entry.d_un.d_val)>(value);
    entries.push_back(entry);
  };
  for (const std::string& name : spec.needed) add_entry(DT_NEEDED, add_string(name));
  if (spec.rpath) add_entry(DT_RPATH, add_string(*spec.rpath));
  if (spec.runpath) add_entry(DT_RUNPATH, add_string(*spec.runpath));

  Crafted out;
  std::size_t phnum = spec.dynamic ? 2 : 1;
  out.dynstr = sizeof(Ehdr) + phnum * sizeof(Phdr);
  out.dynamic = (out.dynstr + strings.size() + 7) / 8 * 8;
  out.strtab_entry = out.dynamic + entries.size() * sizeof(Dyn);
  add_entry(DT_STRTAB, kBase + out.dynstr);
  add_entry(DT_STRSZ, strings.size());
  add_entry(DT_NULL, 0);
  std::size_t dynamic_size = entries.size() * sizeof(Dyn);
  out.shoff = out.dynamic + dynamic_size;
  out.shstrtab = out.shoff + kCraftedSections * sizeof(Shdr);
  std::size_t size = spec.section_headers ? out.shstrtab + sizeof kSectionNames : out.shoff;
  if (!spec.dynamic) size = out.dynstr;

  out.bytes.assign(size, '\0');
  auto put = [&](std::size_t at, const auto& value) {
    std::memcpy(out.bytes.data() + at, &value, sizeof value);
  };
  Ehdr header{};
  std::memcpy(header.e_ident, ELFMAG, SELFMAG);
  header.e_ident[EI_CLASS] = spec.elf_class;
  header.e_ident[EI_DATA] = ELFDATA2LSB;
  header.e_ident[EI_VERSION] = EV_CURRENT;
  header.e_type = ET_EXEC;
  header.e_machine = spec.machine;
  header.e_version = EV_CURRENT;
  header.e_phoff = sizeof(Ehdr);
  header.e_ehsize = sizeof(Ehdr);
  header.e_phentsize = sizeof(Phdr);
  header.e_phnum = static_cast<decltype(header.e_phnum)>(phnum);
  if (spec.section_headers && spec.dynamic) {
    header.e_shoff = static_cast<decltype(header.e_shoff)>(out.shoff);
    header.e_shentsize = sizeof(Shdr);
    header.e_shnum = kCraftedSections;
    header.e_shstrndx = spec.shstrndx_escape ? SHN_XINDEX : kCraftedShstrndx;
  }
  put(0, header);

  Phdr load{};
  load.p_type = PT_LOAD;
  load.p_vaddr = kBase;
  load.p_filesz = static_cast<decltype(load.p_filesz)>(size);
  load.p_memsz = load.p_filesz;
  put(sizeof(Ehdr), load);
  if (!spec.dynamic) return out;

  Phdr dynamic{};
  dynamic.p_type = PT_DYNAMIC;
  dynamic.p_offset = static_cast<decltype(dynamic.p_offset)>(out.dynamic);
  dynamic.p_vaddr = static_cast<decltype(dynamic.p_vaddr)>(kBase + out.dynamic);
  dynamic.p_filesz = static_cast<decltype(dynamic.p_filesz)>(dynamic_size);
  dynamic.p_memsz = dynamic.p_filesz;
  put(sizeof(Ehdr) + sizeof(Phdr), dynamic);

  std::memcpy(out.bytes.data() + out.dynstr, strings.data(), strings.size());
  std::memcpy(out.bytes.data() + out.dynamic, entries.data(), dynamic_size);
  if (spec.section_headers) {
    Shdr null{};
    if (spec.shstrndx_escape) null.sh_link = kCraftedShstrndx;
    Shdr dynstr{};
    dynstr.sh_name = kDynstrName;
    dynstr.sh_type = SHT_STRTAB;
    dynstr.sh_offset = static_cast<decltype(dynstr.sh_offset)>(out.dynstr);
    dynstr.sh_size = static_cast<decltype(dynstr.sh_size)>(strings.size());
    Shdr dynamic_section{};
    dynamic_section.sh_name = kDynamicName;
    dynamic_section.sh_type = SHT_DYNAMIC;
    dynamic_section.sh_offset = static_cast<decltype(dynamic_section.sh_offset)>(out.dynamic);
    dynamic_section.sh_size = static_cast<decltype(dynamic_section.sh_size)>(dynamic_size);
    dynamic_section.sh_link = 1;
    dynamic_section.sh_entsize = sizeof(Dyn);
    Shdr names{};
    names.sh_name = kShstrtabName;
    names.sh_type = SHT_STRTAB;
    names.sh_offset = static_cast<decltype(names.sh_offset)>(out.shstrtab);
    names.sh_size = sizeof kSectionNames;
    put(out.shoff, null);
    put(out.shoff + sizeof(Shdr), dynstr);
    put(out.shoff + 2 * sizeof(Shdr), dynamic_section);
    put(out.shoff + 3 * sizeof(Shdr), names);
    std::memcpy(out.bytes.data() + out.shstrtab, kSectionNames, sizeof kSectionNames);
  }
  return out;
}

Crafted Craft(const CraftSpec& spec) {
  return spec.elf_class == ELFCLASS32
             ? CraftAs<Elf32_Ehdr, Elf32_Phdr, Elf32_Shdr, Elf32_Dyn>(spec)
             : CraftAs<Elf64_Ehdr, Elf64_Phdr, Elf64_Shdr, Elf64_Dyn>(spec);
}

class ElfDepsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  fs::path Write(const std::string& name, const std::string& bytes) {
    fs::path file = dir_.path() / name;
    fs::create_directories(file.parent_path());
    WriteBytes(file, bytes);
    fs::permissions(file, fs::perms::owner_exec, fs::perm_options::add);
    return file;
  }

  std::vector<fs::path> Libraries(const fs::path& executable) {
    Result<std::vector<fs::path>> libraries = BuildTreeLibraries(executable);
    EXPECT_TRUE(libraries.ok()) << libraries.error().message;
    return libraries.ok() ? *libraries : std::vector<fs::path>{};
  }

  ElfDynamic Dynamic(const fs::path& file) {
    Result<std::optional<ElfDynamic>> dynamic = ReadElfDynamic(file);
    EXPECT_TRUE(dynamic.ok()) << dynamic.error().message;
    if (!dynamic.ok()) return {};
    EXPECT_TRUE(dynamic->has_value()) << file << " is not ELF";
    return dynamic->value_or(ElfDynamic{});
  }

  // ReadElfDynamic's error for `file`, which must be one.
  std::string DynamicError(const fs::path& file) {
    Result<std::optional<ElfDynamic>> dynamic = ReadElfDynamic(file);
    EXPECT_FALSE(dynamic.ok()) << file << " was read";
    return dynamic.ok() ? std::string() : dynamic.error().message;
  }

  // HasSection's answer for `file`, which must be one.
  bool Has(const fs::path& file, const std::string& name) {
    Result<bool> has = HasSection(file, name);
    EXPECT_TRUE(has.ok()) << has.error().message;
    return has.ok() && *has;
  }

  // HasSection's error for `file`, which must be one.
  std::string SectionError(const fs::path& file, const std::string& name = ".dynamic") {
    Result<bool> has = HasSection(file, name);
    EXPECT_FALSE(has.ok()) << file << " was read";
    return has.ok() ? std::string() : has.error().message;
  }

  // An executable for this machine needing `needed`, with these path lists.
  CraftSpec Spec(std::vector<std::string> needed, std::optional<std::string> runpath,
                 std::optional<std::string> rpath = std::nullopt) const {
    CraftSpec spec;
    spec.machine = machine_;
    spec.needed = std::move(needed);
    spec.runpath = std::move(runpath);
    spec.rpath = std::move(rpath);
    return spec;
  }

  std::uint16_t machine_ = MachineOf(kLib / "libtf_dep_leaf.so");
  test::TempDir dir_{"testfarm-elf-deps-"};
};

// --- The fixtures --------------------------------------------------------------------------

TEST_F(ElfDepsTest, FixtureRunsFromTheBuildTree) {
  std::string command = (kFixtures / "tf_uses_deps").string() + " 2>&1";
  test::ChildResult ran = test::RunChild({"/bin/sh", "-c", command});
  const std::string& out = ran.out;
  EXPECT_EQ(ran.exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("tf_uses_deps: 42"));
}

TEST_F(ElfDepsTest, ReadsTheDynamicSection) {
  ElfDynamic dynamic = Dynamic(kFixtures / "tf_uses_deps");
  ASSERT_FALSE(dynamic.needed.empty());
  EXPECT_EQ(dynamic.needed.front(), "libtf_dep_mid.so");
  EXPECT_THAT(dynamic.needed, ::testing::Contains("libm.so.6"));
  EXPECT_THAT(dynamic.needed, ::testing::Contains("libc.so.6"));
  EXPECT_THAT(dynamic.runpath, ElementsAre(kLib.string()));
  EXPECT_THAT(dynamic.rpath, IsEmpty());

  ElfDynamic origin = Dynamic(kFixtures / "tf_origin_deps");
  EXPECT_THAT(origin.runpath, ElementsAre("$ORIGIN/lib"));  // raw
  ElfDynamic rpath = Dynamic(kFixtures / "tf_rpath_deps");
  EXPECT_THAT(rpath.rpath, ElementsAre("$ORIGIN/lib"));
  EXPECT_THAT(rpath.runpath, IsEmpty());

  ElfDynamic leaf = Dynamic(kLib / "libtf_dep_leaf.so");
  EXPECT_THAT(leaf.rpath, IsEmpty());
  EXPECT_THAT(leaf.runpath, IsEmpty());
}

TEST_F(ElfDepsTest, FollowsRunpathTransitivelySkippingSystemLibraries) {
  EXPECT_THAT(Libraries(kFixtures / "tf_uses_deps"),
              ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
  EXPECT_THAT(Libraries(kLib / "libtf_dep_mid.so"), ElementsAre(kLib / "libtf_dep_leaf.so"));
  EXPECT_THAT(Libraries(kLib / "libtf_dep_leaf.so"), IsEmpty());
}

TEST_F(ElfDepsTest, ExpandsOrigin) {
  EXPECT_THAT(Libraries(kFixtures / "tf_origin_deps"),
              ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

TEST_F(ElfDepsTest, OriginIsWhereTheCopyIsAndSymlinksAreKept) {
  // A copy elsewhere finds libtf_dep_mid.so next to it, under the name it is looked up by (a
  // symlink here); libtf_dep_mid.so's own absolute RUNPATH still finds the fixture's leaf.
  fs::path copy = dir_.path() / "bin" / "tf_origin_deps";
  fs::create_directories(copy.parent_path() / "lib");
  fs::copy_file(kFixtures / "tf_origin_deps", copy);
  EXPECT_THAT(Libraries(copy), IsEmpty());  // nothing next to it yet: left to the system
  fs::create_symlink(kLib / "libtf_dep_mid.so", copy.parent_path() / "lib" / "libtf_dep_mid.so");
  EXPECT_THAT(Libraries(copy), ElementsAre(copy.parent_path() / "lib" / "libtf_dep_mid.so",
                                           kLib / "libtf_dep_leaf.so"));
  EXPECT_THAT(
      Libraries(dir_.path() / "bin" / ".." / "bin" / "tf_origin_deps"),
      ElementsAre(copy.parent_path() / "lib" / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

TEST_F(ElfDepsTest, OriginOfASymlinkedExecutableIsItsTarget) {
  // ld.so takes the executable's $ORIGIN from /proc/self/exe, which resolves symlinks.
  fs::path link = dir_.path() / "tf_origin_deps";
  fs::create_symlink(kFixtures / "tf_origin_deps", link);
  EXPECT_THAT(Libraries(link), ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

TEST_F(ElfDepsTest, ExecutableRpathAppliesToItsDependencies) {
  // libtf_dep_bare.so has no RPATH/RUNPATH: ld.so finds its leaf through the executable's
  // RPATH, with the executable's $ORIGIN (not the library's, which would give lib/lib).
  EXPECT_THAT(Libraries(kFixtures / "tf_rpath_deps"),
              ElementsAre(kLib / "libtf_dep_bare.so", kLib / "libtf_dep_leaf.so"));
  EXPECT_THAT(Libraries(kLib / "libtf_dep_bare.so"), IsEmpty());
}

TEST_F(ElfDepsTest, DependencyCycleEnds) {
  ASSERT_THAT(Dynamic(kLib / "libtf_cycle_a.so").needed, ElementsAre("libtf_cycle_b.so"));
  ASSERT_THAT(Dynamic(kLib / "libtf_cycle_b.so").needed, ::testing::Contains("libtf_cycle_a.so"));
  EXPECT_THAT(Libraries(kLib / "libtf_cycle_a.so"), ElementsAre(kLib / "libtf_cycle_b.so"));
  EXPECT_THAT(Libraries(kLib / "libtf_cycle_b.so"), ElementsAre(kLib / "libtf_cycle_a.so"));
  // Reached from an executable: each library once.
  CraftSpec spec = Spec({"libtf_cycle_a.so"}, kLib.string());
  fs::path executable = Write("cycle", Craft(spec).bytes);
  EXPECT_THAT(Libraries(executable),
              ElementsAre(kLib / "libtf_cycle_a.so", kLib / "libtf_cycle_b.so"));
}

TEST_F(ElfDepsTest, WithoutSectionHeadersTheProgramHeadersGiveTheSameAnswer) {
  for (const fs::path& file : {kFixtures / "tf_uses_deps", kFixtures / "tf_rpath_deps",
                               kLib / "libtf_dep_mid.so", kLib / "libtf_cycle_b.so"}) {
    SCOPED_TRACE(file);
    std::string bytes = ReadBytes(file);
    Elf64_Ehdr header{};
    ASSERT_GE(bytes.size(), sizeof header);
    std::memcpy(&header, bytes.data(), sizeof header);
    header.e_shoff = 0;
    header.e_shnum = 0;
    header.e_shstrndx = SHN_UNDEF;
    std::memcpy(bytes.data(), &header, sizeof header);
    fs::path stripped = Write("stripped", bytes);
    ElfDynamic with = Dynamic(file);
    ElfDynamic without = Dynamic(stripped);
    EXPECT_FALSE(with.needed.empty());
    EXPECT_EQ(without.needed, with.needed);
    EXPECT_EQ(without.rpath, with.rpath);
    EXPECT_EQ(without.runpath, with.runpath);
  }
  fs::path stripped = dir_.path() / "stripped";
  fs::copy_file(kFixtures / "tf_uses_deps", stripped, fs::copy_options::overwrite_existing);
  UniqueFd fd(::open(stripped.c_str(), O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  Elf64_Off no_sections = 0;
  ASSERT_EQ(::pwrite(fd.get(), &no_sections, sizeof no_sections, offsetof(Elf64_Ehdr, e_shoff)),
            static_cast<ssize_t>(sizeof no_sections));
  EXPECT_THAT(Libraries(stripped),
              ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

// --- Crafted files -------------------------------------------------------------------------

TEST_F(ElfDepsTest, ReadsCrafted64And32BitFilesWithAndWithoutSectionHeaders) {
  for (unsigned char elf_class : {ELFCLASS64, ELFCLASS32}) {
    for (bool section_headers : {true, false}) {
      SCOPED_TRACE(::testing::Message()
                   << "class " << int{elf_class} << ", section headers " << section_headers);
      CraftSpec spec = Spec({"libone.so", "libtwo.so.2"}, "/c::", "/a:$ORIGIN/b");
      spec.elf_class = elf_class;
      spec.section_headers = section_headers;
      ElfDynamic dynamic = Dynamic(Write("crafted", Craft(spec).bytes));
      EXPECT_THAT(dynamic.needed, ElementsAre("libone.so", "libtwo.so.2"));
      EXPECT_THAT(dynamic.rpath, ElementsAre("/a", "$ORIGIN/b"));
      EXPECT_THAT(dynamic.runpath, ElementsAre("/c", "", ""));

      spec.rpath.reset();
      spec.runpath = "";
      dynamic = Dynamic(Write("crafted", Craft(spec).bytes));
      EXPECT_THAT(dynamic.rpath, IsEmpty());
      EXPECT_THAT(dynamic.runpath, ElementsAre(""));  // present, though empty
    }
  }
}

TEST_F(ElfDepsTest, StaticFileHasAnEmptyDynamicSection) {
  for (unsigned char elf_class : {ELFCLASS64, ELFCLASS32}) {
    CraftSpec spec = Spec({}, std::nullopt);
    spec.elf_class = elf_class;
    spec.dynamic = false;
    fs::path file = Write("static", Craft(spec).bytes);
    ElfDynamic dynamic = Dynamic(file);
    EXPECT_THAT(dynamic.needed, IsEmpty());
    EXPECT_THAT(dynamic.rpath, IsEmpty());
    EXPECT_THAT(dynamic.runpath, IsEmpty());
    EXPECT_THAT(Libraries(file), IsEmpty());
  }
}

TEST_F(ElfDepsTest, SearchPassesOverOtherClassesAndNonElfFiles) {
  fs::path leaf = kLib / "libtf_dep_leaf.so";
  Write("a/libtf_dep_leaf.so", "not a library\n");
  fs::create_directories(dir_.path() / "b");
  fs::create_symlink(leaf, dir_.path() / "b" / "libtf_dep_leaf.so");
  CraftSpec spec =
      Spec({"libtf_dep_leaf.so"}, "${ORIGIN}/a:/nonexistent:$ORIGIN/b/:" + kLib.string());
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)),
              ElementsAre(dir_.path() / "b" / "libtf_dep_leaf.so"));

  // A 32-bit executable does not load the 64-bit leaf (nor does any other machine's).
  spec.elf_class = ELFCLASS32;
  EXPECT_THAT(Libraries(Write("exe32", Craft(spec).bytes)), IsEmpty());
  spec.elf_class = ELFCLASS64;
  spec.machine = static_cast<std::uint16_t>(machine_ == EM_AARCH64 ? EM_X86_64 : EM_AARCH64);
  EXPECT_THAT(Libraries(Write("exe_other", Craft(spec).bytes)), IsEmpty());
}

TEST_F(ElfDepsTest, RunpathDisablesRpathAndRelativeOrUnknownTokensAreSkipped) {
  CraftSpec spec = Spec({"libtf_dep_leaf.so"}, std::nullopt, kLib.string());
  fs::path file = Write("exe", Craft(spec).bytes);
  EXPECT_THAT(Libraries(file), ElementsAre(kLib / "libtf_dep_leaf.so"));
  spec.runpath = "";  // an empty RUNPATH still disables RPATH
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)), IsEmpty());
  spec.rpath.reset();
  spec.runpath = "lib:$LIB/x:$PLATFORM:$ORIGINAL";
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)), IsEmpty());
  // A name with a '/' is a path: taken as it is when absolute.
  spec.needed = {(kLib / "libtf_dep_mid.so").string(), "lib/libtf_dep_leaf.so"};
  spec.runpath.reset();
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)),
              ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

// The system collection of libraries: the libc this test runs with.
fs::path LoadedLibc() {
  fs::path found;
  ::dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* out) {
        std::string name = info->dlpi_name != nullptr ? info->dlpi_name : "";
        if (fs::path(name).filename() != "libc.so.6") return 0;
        *static_cast<fs::path*>(out) = name;
        return 1;
      },
      &found);
  return found;
}

TEST_F(ElfDepsTest, LibrariesUnderSystemDirectoriesAreSkippedByCanonicalPath) {
  fs::path libc = LoadedLibc();
  ASSERT_FALSE(libc.empty());
  fs::create_directories(dir_.path() / "sys");
  fs::create_symlink(libc, dir_.path() / "sys" / "libc.so.6");
  CraftSpec spec = Spec({"libc.so.6"}, (dir_.path() / "sys").string());
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)), IsEmpty());
  // A copy outside them is the build tree's: shipped.
  fs::create_directories(dir_.path() / "copy");
  fs::copy_file(libc, dir_.path() / "copy" / "libc.so.6");
  spec.runpath = (dir_.path() / "copy").string();
  EXPECT_THAT(Libraries(Write("exe", Craft(spec).bytes)),
              ElementsAre(dir_.path() / "copy" / "libc.so.6"));
}

// --- Files that are not (good) ELF ---------------------------------------------------------

TEST_F(ElfDepsTest, NonElfFilesHaveNothingToResolve) {
  for (const std::string& bytes : {std::string("#!/bin/sh\necho hello\n"), std::string(),
                                   std::string("\x7f"
                                               "EL"),
                                   std::string("ELF\x7f and more")}) {
    fs::path script = Write("script", bytes);
    Result<std::optional<ElfDynamic>> dynamic = ReadElfDynamic(script);
    ASSERT_TRUE(dynamic.ok()) << dynamic.error().message;
    EXPECT_FALSE(dynamic->has_value());
    EXPECT_THAT(Libraries(script), IsEmpty());
  }
}

TEST_F(ElfDepsTest, MissingOrUnreadableFileIsAnError) {
  fs::path missing = dir_.path() / "missing";
  EXPECT_THAT(DynamicError(missing), HasSubstr(missing.string()));
  Result<std::vector<fs::path>> libraries = BuildTreeLibraries(missing);
  ASSERT_FALSE(libraries.ok());
  EXPECT_THAT(libraries.error().message, HasSubstr(missing.string()));
  EXPECT_THAT(DynamicError(dir_.path()), HasSubstr("not a regular file"));
}

TEST_F(ElfDepsTest, TruncatedElfFileIsAnError) {
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  ASSERT_GT(bytes.size(), 1000u);
  fs::path head = Write("head", bytes.substr(0, 100));
  EXPECT_THAT(DynamicError(head), HasSubstr(head.string()));
  fs::path half = Write("half", bytes.substr(0, bytes.size() / 2));
  EXPECT_THAT(DynamicError(half), HasSubstr(half.string()));
  fs::path header = Write("header", bytes.substr(0, 20));
  EXPECT_THAT(DynamicError(header), HasSubstr("ELF header"));
  Result<std::vector<fs::path>> libraries = BuildTreeLibraries(half);
  ASSERT_FALSE(libraries.ok());
  EXPECT_THAT(libraries.error().message, HasSubstr(half.string()));

  // Every cut: the section headers are at the end, so each one is an error.
  fs::path cut = Write("cut", bytes);
  for (std::size_t size = bytes.size() - 1; size >= SELFMAG;
       size -= std::min<std::size_t>(size, 13)) {
    ASSERT_EQ(::truncate(cut.c_str(), static_cast<off_t>(size)), 0);
    Result<std::optional<ElfDynamic>> dynamic = ReadElfDynamic(cut);
    ASSERT_FALSE(dynamic.ok()) << "cut at " << size;
    ASSERT_THAT(dynamic.error().message, HasSubstr(cut.string()));
  }
}

TEST_F(ElfDepsTest, TruncatedLibraryIsAnErrorNamingIt) {
  std::string leaf = ReadBytes(kLib / "libtf_dep_leaf.so");
  fs::path broken = Write("lib/libtf_dep_leaf.so", leaf.substr(0, leaf.size() - 10));
  CraftSpec spec = Spec({"libtf_dep_leaf.so"}, "$ORIGIN/lib");
  Result<std::vector<fs::path>> libraries = BuildTreeLibraries(Write("exe", Craft(spec).bytes));
  ASSERT_FALSE(libraries.ok());
  EXPECT_THAT(libraries.error().message, HasSubstr(broken.string()));
}

TEST_F(ElfDepsTest, GarbageAfterTheMagicIsAnError) {
  fs::path garbage = Write("garbage", std::string(ELFMAG) + std::string(4096, '\xab'));
  EXPECT_THAT(DynamicError(garbage), HasSubstr(garbage.string()));
  // A good identification, then garbage.
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  fs::path ident = Write("ident", bytes.substr(0, EI_NIDENT) + std::string(4096, '\xff'));
  EXPECT_THAT(DynamicError(ident), HasSubstr(ident.string()));
  // Big-endian is not supported, and says so.
  std::string big = bytes;
  big[EI_DATA] = ELFDATA2MSB;
  EXPECT_THAT(DynamicError(Write("big", big)), HasSubstr("unsupported"));
}

TEST_F(ElfDepsTest, MalformedCraftedFilesAreErrors) {
  CraftSpec spec = Spec({"libone.so"}, "/x");
  for (bool section_headers : {true, false}) {
    spec.section_headers = section_headers;
    Crafted good = Craft(spec);
    auto patch = [&](std::size_t at, const auto& value) {
      std::string bytes = good.bytes;
      std::memcpy(bytes.data() + at, &value, sizeof value);
      return Write("bad", bytes);
    };
    Elf64_Dyn needed{};
    std::memcpy(&needed, good.bytes.data() + good.dynamic, sizeof needed);
    needed.d_un.d_val = 1u << 20;  // string offset past the table
    EXPECT_THAT(DynamicError(patch(good.dynamic, needed)), HasSubstr("DT_NEEDED"));

    // The table is "\0libone.so\0/x\0": its last string, "/x", runs to its end.
    std::string unterminated = good.bytes;
    unterminated[good.dynstr + 13] = 'x';
    EXPECT_THAT(DynamicError(Write("bad", unterminated)), HasSubstr("not terminated"));

    if (section_headers) continue;  // the program headers are not read
    EXPECT_THAT(DynamicError(patch(offsetof(Elf64_Ehdr, e_phentsize), std::uint16_t{1000})),
                HasSubstr("program header"));
    EXPECT_THAT(DynamicError(patch(offsetof(Elf64_Ehdr, e_phoff), std::uint64_t{1} << 62)),
                HasSubstr("program headers"));
  }
  // Section headers: absurd counts and offsets, a bad string table link.
  spec.section_headers = true;
  Crafted good = Craft(spec);
  auto patch = [&](std::size_t at, const auto& value) {
    std::string bytes = good.bytes;
    std::memcpy(bytes.data() + at, &value, sizeof value);
    return Write("bad", bytes);
  };
  EXPECT_THAT(DynamicError(patch(offsetof(Elf64_Ehdr, e_shoff), std::uint64_t{1} << 63)),
              HasSubstr("section headers"));
  EXPECT_THAT(DynamicError(patch(offsetof(Elf64_Ehdr, e_shnum), std::uint16_t{0xffff})),
              HasSubstr("section headers"));
  // e_shnum 0: the count is section 0's sh_size, here absurd.
  std::string extended = good.bytes;
  std::memset(extended.data() + offsetof(Elf64_Ehdr, e_shnum), 0, sizeof(Elf64_Half));
  std::uint64_t count = std::uint64_t{1} << 40;
  std::memcpy(extended.data() + good.shoff + offsetof(Elf64_Shdr, sh_size), &count, sizeof count);
  EXPECT_THAT(DynamicError(Write("bad", extended)), HasSubstr("section headers"));
  std::uint32_t bad_link = 7;
  EXPECT_THAT(DynamicError(patch(
                  good.shoff + 2 * sizeof(Elf64_Shdr) + offsetof(Elf64_Shdr, sh_link), bad_link)),
              HasSubstr("string table"));
  std::uint64_t bad_size = 12345;
  EXPECT_THAT(DynamicError(patch(
                  good.shoff + 2 * sizeof(Elf64_Shdr) + offsetof(Elf64_Shdr, sh_size), bad_size)),
              HasSubstr("dynamic section"));
  // Program headers only: DT_STRTAB outside every PT_LOAD segment.
  spec.section_headers = false;
  good = Craft(spec);
  Elf64_Dyn strtab{};
  std::memcpy(&strtab, good.bytes.data() + good.strtab_entry, sizeof strtab);
  ASSERT_EQ(strtab.d_tag, DT_STRTAB);
  strtab.d_un.d_ptr = 0x1000;
  EXPECT_THAT(DynamicError(patch(good.strtab_entry, strtab)), HasSubstr("PT_LOAD"));
}

// Random corruption of a real executable's headers, section headers, dynamic section and
// string table must give a result or an error, never a crash (this also runs under ASan and
// UBSan).
TEST_F(ElfDepsTest, CorruptedFilesNeverCrash) {
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  Elf64_Ehdr header{};
  ASSERT_GE(bytes.size(), sizeof header);
  std::memcpy(&header, bytes.data(), sizeof header);
  ASSERT_EQ(header.e_ident[EI_CLASS], ELFCLASS64);
  struct Region {
    std::size_t offset, size;
  };
  std::vector<Region> regions = {{0, sizeof header},
                                 {header.e_phoff, std::size_t{header.e_phnum} * sizeof(Elf64_Phdr)},
                                 {header.e_shoff, bytes.size() - header.e_shoff}};
  for (std::size_t i = 0; i < header.e_shnum; ++i) {
    Elf64_Shdr section{};
    std::memcpy(&section, bytes.data() + header.e_shoff + i * sizeof section, sizeof section);
    if (section.sh_type == SHT_DYNAMIC) regions.push_back({section.sh_offset, section.sh_size});
    if (section.sh_type == SHT_STRTAB && (section.sh_flags & SHF_ALLOC) != 0) {
      regions.push_back({section.sh_offset, section.sh_size});
    }
  }
  ASSERT_GE(regions.size(), 5u);
  fs::path file = Write("corrupt", bytes);
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());

  std::mt19937 random(20240611);
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    const Region& region = regions[random() % regions.size()];
    std::vector<std::pair<std::size_t, char>> changed;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int k = 0; k < flips; ++k) {
      std::size_t at = region.offset + random() % region.size;
      char value = static_cast<char>(random() % 3 == 0 ? 0xff : random() % 3 == 0 ? 0 : random());
      changed.emplace_back(at, value);
    }
    for (auto [at, value] : changed) {
      ASSERT_EQ(::pwrite(fd.get(), &value, 1, static_cast<off_t>(at)), 1);
    }
    Result<std::optional<ElfDynamic>> dynamic = ReadElfDynamic(file);
    Result<std::vector<fs::path>> libraries = BuildTreeLibraries(file);
    if (!dynamic.ok()) ++errors;
    if (!libraries.ok()) {
      EXPECT_THAT(libraries.error().message, HasSubstr("/"));
    }
    for (auto [at, value] : changed) {
      ASSERT_EQ(::pwrite(fd.get(), bytes.data() + at, 1, static_cast<off_t>(at)), 1);
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_THAT(Libraries(file), ElementsAre(kLib / "libtf_dep_mid.so", kLib / "libtf_dep_leaf.so"));
}

// --- HasSection ----------------------------------------------------------------------------

TEST_F(ElfDepsTest, HasSectionOfTheFixtures) {
  for (const fs::path& file :
       {kFixtures / "tf_uses_deps", kLib / "libtf_dep_leaf.so", kCov / "tf_cov_uninstrumented"}) {
    SCOPED_TRACE(file);
    EXPECT_TRUE(Has(file, ".dynamic"));
    EXPECT_TRUE(Has(file, ".text"));
    EXPECT_TRUE(Has(file, ".shstrtab"));
    EXPECT_FALSE(Has(file, "__llvm_covmap"));
    EXPECT_FALSE(Has(file, ".dyn"));  // whole names only
    EXPECT_FALSE(Has(file, ".dynamic2"));
  }
}

TEST_F(ElfDepsTest, InstrumentedFixturesHaveCoverageMapping) {
  if (!TESTFARM_COVERAGE_FIXTURES) GTEST_SKIP() << "no clang++: coverage fixtures not built";
  for (const fs::path& file :
       {kCov / "tf_cov_gtest", kCov / "tf_cov_plain", kCov / "lib" / "libtf_cov.so"}) {
    SCOPED_TRACE(file);
    EXPECT_TRUE(Has(file, "__llvm_covmap"));
    EXPECT_TRUE(Has(file, "__llvm_prf_cnts"));
  }
  // They load the instrumented library through RUNPATH $ORIGIN/lib.
  EXPECT_THAT(Libraries(kCov / "tf_cov_gtest"), ElementsAre(kCov / "lib" / "libtf_cov.so"));
  EXPECT_THAT(Libraries(kCov / "tf_cov_plain"), ElementsAre(kCov / "lib" / "libtf_cov.so"));
  EXPECT_THAT(Libraries(kCov / "tf_cov_uninstrumented"), IsEmpty());
}

TEST_F(ElfDepsTest, InstrumentedFixtureRunsAndWritesAProfile) {
  if (!TESTFARM_COVERAGE_FIXTURES) GTEST_SKIP() << "no clang++: coverage fixtures not built";
  std::string command = "LLVM_PROFILE_FILE='" + (dir_.path() / "%p.profraw").string() + "' " +
                        (kCov / "tf_cov_plain").string() + " 2>&1";
  test::ChildResult ran = test::RunChild({"/bin/sh", "-c", command});
  const std::string& out = ran.out;
  EXPECT_EQ(ran.exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("tf_cov_plain: negative 6 sat 1"));
  std::size_t profiles = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_.path())) {
    if (entry.path().extension() == ".profraw" && entry.file_size() > 0) ++profiles;
  }
  EXPECT_EQ(profiles, 1u);
}

TEST_F(ElfDepsTest, HasSectionOfCrafted64And32BitFiles) {
  for (unsigned char elf_class : {ELFCLASS64, ELFCLASS32}) {
    for (bool escape : {false, true}) {
      SCOPED_TRACE(::testing::Message()
                   << "class " << int{elf_class} << ", SHN_XINDEX escape " << escape);
      CraftSpec spec = Spec({"libone.so"}, "/x");
      spec.elf_class = elf_class;
      spec.shstrndx_escape = escape;
      fs::path file = Write("crafted", Craft(spec).bytes);
      EXPECT_TRUE(Has(file, ".dynamic"));
      EXPECT_TRUE(Has(file, ".dynstr"));
      EXPECT_TRUE(Has(file, ".shstrtab"));
      EXPECT_FALSE(Has(file, "__llvm_covmap"));
      EXPECT_FALSE(Has(file, ".dyn"));
      EXPECT_FALSE(Has(file, ""));  // section 0 is no section
      EXPECT_THAT(Dynamic(file).needed, ElementsAre("libone.so"));
    }
  }
}

TEST_F(ElfDepsTest, HasSectionThroughTheShnXindexEscapeOfARealFile) {
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  Elf64_Ehdr header{};
  ASSERT_GE(bytes.size(), sizeof header);
  std::memcpy(&header, bytes.data(), sizeof header);
  ASSERT_NE(header.e_shstrndx, SHN_UNDEF);
  Elf64_Word index = header.e_shstrndx;
  header.e_shstrndx = SHN_XINDEX;
  std::memcpy(bytes.data(), &header, sizeof header);
  std::size_t link = header.e_shoff + offsetof(Elf64_Shdr, sh_link);
  std::memcpy(bytes.data() + link, &index, sizeof index);
  fs::path file = Write("escaped", bytes);
  EXPECT_TRUE(Has(file, ".dynamic"));
  EXPECT_FALSE(Has(file, "__llvm_covmap"));
  Elf64_Word bad = header.e_shnum;
  std::memcpy(bytes.data() + link, &bad, sizeof bad);
  EXPECT_THAT(SectionError(Write("escaped", bytes)), HasSubstr("section name string table"));
}

TEST_F(ElfDepsTest, FilesWithoutSectionNamesHaveNoSections) {
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  Elf64_Ehdr header{};
  ASSERT_GE(bytes.size(), sizeof header);
  std::memcpy(&header, bytes.data(), sizeof header);
  Elf64_Ehdr no_names = header;
  no_names.e_shstrndx = SHN_UNDEF;
  std::memcpy(bytes.data(), &no_names, sizeof no_names);
  EXPECT_FALSE(Has(Write("no_names", bytes), ".dynamic"));
  Elf64_Ehdr no_sections = header;
  no_sections.e_shoff = 0;
  std::memcpy(bytes.data(), &no_sections, sizeof no_sections);
  EXPECT_FALSE(Has(Write("no_sections", bytes), ".dynamic"));
  // Crafted, without section headers.
  CraftSpec spec = Spec({"libone.so"}, std::nullopt);
  spec.section_headers = false;
  EXPECT_FALSE(Has(Write("crafted", Craft(spec).bytes), ".dynamic"));
}

TEST_F(ElfDepsTest, NonElfFilesHaveNoSections) {
  for (const std::string& bytes : {std::string("#!/bin/sh\necho hello\n"), std::string(),
                                   std::string("\x7f"
                                               "EL"),
                                   std::string("ELF\x7f and more")}) {
    EXPECT_FALSE(Has(Write("script", bytes), ".dynamic"));
    EXPECT_FALSE(Has(Write("script", bytes), "__llvm_covmap"));
  }
}

TEST_F(ElfDepsTest, HasSectionOfMissingTruncatedOrGarbageFilesIsAnError) {
  fs::path missing = dir_.path() / "missing";
  EXPECT_THAT(SectionError(missing), HasSubstr(missing.string()));
  EXPECT_THAT(SectionError(dir_.path()), HasSubstr("not a regular file"));

  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  fs::path header = Write("header", bytes.substr(0, 20));
  EXPECT_THAT(SectionError(header), HasSubstr("ELF header"));
  // Every cut: the section headers are at the end, so each one is an error.
  fs::path cut = Write("cut", bytes);
  for (std::size_t size = bytes.size() - 1; size >= SELFMAG;
       size -= std::min<std::size_t>(size, 13)) {
    ASSERT_EQ(::truncate(cut.c_str(), static_cast<off_t>(size)), 0);
    Result<bool> has = HasSection(cut, "__llvm_covmap");
    ASSERT_FALSE(has.ok()) << "cut at " << size;
    ASSERT_THAT(has.error().message, HasSubstr(cut.string()));
  }

  fs::path garbage = Write("garbage", std::string(ELFMAG) + std::string(4096, '\xab'));
  EXPECT_THAT(SectionError(garbage), HasSubstr(garbage.string()));
  fs::path ident = Write("ident", bytes.substr(0, EI_NIDENT) + std::string(4096, '\xff'));
  EXPECT_THAT(SectionError(ident), HasSubstr(ident.string()));
  std::string big = bytes;
  big[EI_DATA] = ELFDATA2MSB;
  EXPECT_THAT(SectionError(Write("big", big)), HasSubstr("unsupported"));
}

TEST_F(ElfDepsTest, MalformedSectionNamesAreErrors) {
  for (unsigned char elf_class : {ELFCLASS64, ELFCLASS32}) {
    SCOPED_TRACE(::testing::Message() << "class " << int{elf_class});
    CraftSpec spec = Spec({"libone.so"}, "/x");
    spec.elf_class = elf_class;
    Crafted good = Craft(spec);
    const bool is64 = elf_class == ELFCLASS64;
    const std::size_t shentsize = is64 ? sizeof(Elf64_Shdr) : sizeof(Elf32_Shdr);
    const std::size_t shstrndx =
        is64 ? offsetof(Elf64_Ehdr, e_shstrndx) : offsetof(Elf32_Ehdr, e_shstrndx);
    const std::size_t names = good.shoff + kCraftedShstrndx * shentsize;  // .shstrtab's header
    const std::size_t sh_type =
        is64 ? offsetof(Elf64_Shdr, sh_type) : offsetof(Elf32_Shdr, sh_type);
    const std::size_t sh_offset =
        is64 ? offsetof(Elf64_Shdr, sh_offset) : offsetof(Elf32_Shdr, sh_offset);
    const std::size_t sh_size =
        is64 ? offsetof(Elf64_Shdr, sh_size) : offsetof(Elf32_Shdr, sh_size);
    auto patch = [&](std::size_t at, const auto& value) {
      std::string bytes = good.bytes;
      std::memcpy(bytes.data() + at, &value, sizeof value);
      return Write("bad", bytes);
    };
    // e_shstrndx past the sections, or a reserved index other than SHN_XINDEX.
    fs::path file = patch(shstrndx, std::uint16_t{kCraftedSections});
    EXPECT_THAT(SectionError(file), HasSubstr("section name string table is section 4 of 4"));
    EXPECT_THAT(SectionError(file), HasSubstr(file.string()));
    EXPECT_THAT(SectionError(patch(shstrndx, std::uint16_t{SHN_LORESERVE})), HasSubstr("reserved"));
    // SHN_XINDEX with section 0's sh_link 0: section 0, which is no string table.
    EXPECT_THAT(SectionError(patch(shstrndx, std::uint16_t{SHN_XINDEX})),
                HasSubstr("section 0, is not a string table"));
    // The table is not a string table, or lies (partly) beyond the end of the file.
    EXPECT_THAT(SectionError(patch(names + sh_type, std::uint32_t{SHT_PROGBITS})),
                HasSubstr("not a string table"));
    std::uint64_t far = std::uint64_t{1} << 30;
    EXPECT_THAT(SectionError(is64 ? patch(names + sh_offset, far)
                                  : patch(names + sh_offset, static_cast<std::uint32_t>(far))),
                HasSubstr("section name string table at offset"));
    EXPECT_THAT(SectionError(is64 ? patch(names + sh_size, std::uint64_t{100})
                                  : patch(names + sh_size, std::uint32_t{100})),
                HasSubstr("section name string table"));
    // A name outside the table, or not terminated within it.
    EXPECT_THAT(SectionError(patch(good.shoff + shentsize, std::uint32_t{1000})),
                HasSubstr("lies outside the section name string table"));
    std::string unterminated = good.bytes;
    unterminated.back() = 'x';  // ".shstrtab", the last name, now runs to the table's end
    EXPECT_TRUE(Has(Write("bad", unterminated), ".dynamic"));  // found before it
    EXPECT_THAT(SectionError(Write("bad", unterminated), "__llvm_covmap"),
                HasSubstr("not terminated within the section name string table"));
  }
}

// Random corruption of a real executable's header, section headers and section name string
// table gives an answer or an error naming the file, never a crash (also run under ASan+UBSan).
TEST_F(ElfDepsTest, HasSectionOfCorruptedFilesNeverCrashes) {
  std::string bytes = ReadBytes(kFixtures / "tf_uses_deps");
  Elf64_Ehdr header{};
  ASSERT_GE(bytes.size(), sizeof header);
  std::memcpy(&header, bytes.data(), sizeof header);
  ASSERT_EQ(header.e_ident[EI_CLASS], ELFCLASS64);
  ASSERT_LT(header.e_shstrndx, header.e_shnum);
  Elf64_Shdr names{};
  std::memcpy(&names, bytes.data() + header.e_shoff + header.e_shstrndx * sizeof names,
              sizeof names);
  struct Region {
    std::size_t offset, size;
  };
  const std::vector<Region> regions = {{0, sizeof header},
                                       {header.e_shoff, bytes.size() - header.e_shoff},
                                       {names.sh_offset, names.sh_size}};
  fs::path file = Write("corrupt", bytes);
  UniqueFd fd(::open(file.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  std::mt19937 random(20240612);
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    const Region& region = regions[random() % regions.size()];
    std::vector<std::pair<std::size_t, char>> changed;
    int flips = 1 + static_cast<int>(random() % 4);
    for (int k = 0; k < flips; ++k) {
      std::size_t at = region.offset + random() % region.size;
      char value = static_cast<char>(random() % 3 == 0 ? 0xff : random() % 3 == 0 ? 0 : random());
      changed.emplace_back(at, value);
    }
    for (auto [at, value] : changed) {
      ASSERT_EQ(::pwrite(fd.get(), &value, 1, static_cast<off_t>(at)), 1);
    }
    Result<bool> has = HasSection(file, "__llvm_covmap");
    if (!has.ok()) {
      ++errors;
      EXPECT_THAT(has.error().message, HasSubstr(file.string()));
    }
    for (auto [at, value] : changed) {
      ASSERT_EQ(::pwrite(fd.get(), bytes.data() + at, 1, static_cast<off_t>(at)), 1);
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_TRUE(Has(file, ".dynamic"));
  EXPECT_FALSE(Has(file, "__llvm_covmap"));
}

}  // namespace
}  // namespace testfarm::coordinator
