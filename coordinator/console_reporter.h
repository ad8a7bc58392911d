#pragma once
// Human output: one line per finished test, a failed test's output under it, a live progress
// line only on a terminal, and a summary whose last line is "N passed, N failed[, N skipped]".
#include <cstdio>

#include "coordinator/report.h"

namespace testfarm::coordinator {

struct ConsoleOptions {
  bool progress = false;           // redraw a progress line (stdout is a terminal)
  bool color = false;              // ANSI colours (a terminal and NO_COLOR unset)
  std::size_t output_lines = 200;  // lines of a failed test's output to show per stream
};

// Decides the defaults from the environment: isatty(stdout), NO_COLOR, TERM=dumb.
ConsoleOptions ConsoleOptionsFromEnvironment();

class ConsoleReporter final : public Reporter {
 public:
  ConsoleReporter(std::FILE* out, ConsoleOptions options) : out_(out), options_(options) {}

  void OnRunStart(std::size_t test_count) override;
  void OnWorkerJoined(const std::string& name, unsigned slots) override;
  void OnTestFinished(const TestReport& report, std::size_t running) override;
  void OnRunEnd(const RunSummary& summary) override;

 private:
  void ClearProgress();
  void DrawProgress(std::size_t running);
  void PrintOutput(const std::string& label, const std::string& text);
  std::string Paint(const char* word) const;

  std::FILE* out_;
  ConsoleOptions options_;
  std::size_t total_ = 0;
  std::size_t finished_ = 0;
  std::size_t failed_ = 0;
  bool progress_shown_ = false;
};

}  // namespace testfarm::coordinator
