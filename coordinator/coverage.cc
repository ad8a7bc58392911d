#include "coordinator/coverage.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "coordinator/artifacts.h"
#include "coordinator/elf_deps.h"
#include "shared/file_io.h"

namespace testfarm::coordinator {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxExportBytes = std::size_t{4} << 30;  // a summary is far smaller

bool Instrumented(const fs::path& file) {
  auto has = HasSection(file, "__llvm_covmap");
  return has && *has;
}

// Non-empty stderr lines, as warnings.
void Surface(const std::string& tool, const std::string& err, std::vector<std::string>* out) {
  std::istringstream lines(err);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out->push_back(tool + ": " + line);
  }
}

Error Failed(const std::string& what, const CommandResult& result) {
  std::string err = result.stderr_text;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  return Error{what + " failed (" + result.what + ")" + (err.empty() ? "" : ": " + err)};
}

}  // namespace

CoverageObjects FindCoverageObjects(const std::vector<TestSpec>& tests) {
  CoverageObjects found;
  std::set<std::string> seen;
  for (const TestSpec& test : tests) {
    std::optional<fs::path> executable = OwnExecutable(test);
    if (!executable || !seen.insert(executable->string()).second) continue;
    if (Instrumented(*executable)) {
      found.objects.push_back(executable->string());
    } else {
      found.uninstrumented.push_back(executable->string());
    }
    if (auto libraries = BuildTreeLibraries(*executable)) {
      for (const fs::path& library : *libraries) {
        if (seen.insert(library.string()).second && Instrumented(library)) {
          found.objects.push_back(library.string());
        }
      }
    }
  }
  return found;
}

Result<CoverageOutcome> ExportCoverage(const CoverageSummary& collected,
                                       const CoverageObjects& objects, const CoverageExport& how,
                                       const CommandRunner& run) {
  if (objects.objects.empty()) {
    return Error{
        "no instrumented binary among the tests (build with -fprofile-instr-generate "
        "-fcoverage-mapping)"};
  }
  if (collected.profiles.empty()) return Error{"no coverage profile was collected"};
  CoverageOutcome outcome;
  std::string profile = collected.profiles.front().string();
  if (collected.profiles.size() > 1) {
    profile = (how.work_dir / "run.profdata").string();
    std::vector<std::string> argv = {how.llvm_profdata, "merge", "-sparse", "-o", profile};
    for (const fs::path& part : collected.profiles) argv.push_back(part.string());
    CommandResult merged = run(argv, "");
    if (!merged.ok) return Failed("llvm-profdata merge", merged);
    Surface("llvm-profdata", merged.stderr_text, &outcome.warnings);
  }
  std::vector<std::string> objects_args = {objects.objects.front()};
  for (std::size_t i = 1; i < objects.objects.size(); ++i) {
    objects_args.push_back("-object");
    objects_args.push_back(objects.objects[i]);
  }
  auto cov = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), how.llvm_cov);
    argv.push_back("-instr-profile=" + profile);
    argv.insert(argv.end(), objects_args.begin(), objects_args.end());
    return argv;
  };
  std::string summary_json;
  if (how.format == "html") {
    CommandResult shown =
        run(cov({"show", "-format=html", "-output-dir=" + how.output.string()}), "");
    if (!shown.ok) return Failed("llvm-cov show", shown);
    Surface("llvm-cov", shown.stderr_text, &outcome.warnings);
  } else {
    std::string format = how.format == "lcov" ? "-format=lcov" : "-format=text";
    CommandResult exported = run(cov({"export", format}), how.output.string());
    if (!exported.ok) return Failed("llvm-cov export", exported);
    Surface("llvm-cov", exported.stderr_text, &outcome.warnings);
    if (how.format == "json" && how.summary) {
      auto text = ReadWholeFile(how.output, kMaxExportBytes);
      if (!text) return text.error();
      summary_json = std::move(*text);
    }
  }
  if (how.summary) {
    if (summary_json.empty()) {
      fs::path file = how.work_dir / "summary.json";
      CommandResult summarized = run(cov({"export", "-format=text", "-summary-only"}), file);
      if (!summarized.ok) return Failed("llvm-cov export -summary-only", summarized);
      auto text = ReadWholeFile(file, kMaxExportBytes);
      if (!text) return text.error();
      summary_json = std::move(*text);
    }
    auto table = FormatCoverageSummary(summary_json);
    if (!table) return table.error();
    outcome.summary = std::move(*table);
  }
  return outcome;
}

Result<std::string> FormatCoverageSummary(const std::string& export_json) {
  nlohmann::json doc = nlohmann::json::parse(export_json, nullptr, false);
  if (doc.is_discarded() || !doc.contains("data") || !doc["data"].is_array() ||
      doc["data"].empty()) {
    return Error{"llvm-cov export: not an llvm.coverage.json.export document"};
  }
  const nlohmann::json& data = doc["data"][0];
  auto cell = [](const nlohmann::json& summary, const char* kind) {
    if (!summary.contains(kind)) return std::string("-");
    uint64_t covered = summary[kind].value("covered", uint64_t{0});
    uint64_t count = summary[kind].value("count", uint64_t{0});
    char text[64];
    if (count == 0) {
      std::snprintf(text, sizeof text, "%llu/%llu", static_cast<unsigned long long>(covered),
                    static_cast<unsigned long long>(count));
    } else {
      std::snprintf(text, sizeof text, "%llu/%llu %5.1f%%",
                    static_cast<unsigned long long>(covered),
                    static_cast<unsigned long long>(count),
                    100.0 * static_cast<double>(covered) / static_cast<double>(count));
    }
    return std::string(text);
  };
  std::ostringstream out;
  auto row = [&](const std::string& name, const nlohmann::json& summary) {
    char line[512];
    std::snprintf(line, sizeof line, "%-20s %-20s %-20s  %s\n", cell(summary, "lines").c_str(),
                  cell(summary, "regions").c_str(), cell(summary, "branches").c_str(),
                  name.c_str());
    out << line;
  };
  char header[256];
  std::snprintf(header, sizeof header, "%-20s %-20s %-20s  %s\n", "lines", "regions", "branches",
                "file");
  out << header;
  if (data.contains("files")) {
    for (const nlohmann::json& file : data["files"]) {
      row(file.value("filename", std::string("?")),
          file.value("summary", nlohmann::json::object()));
    }
  }
  row("TOTAL", data.value("totals", nlohmann::json::object()));
  return out.str();
}

}  // namespace testfarm::coordinator
