#pragma once
// Human output: one line per finished test, a failed test's output under it (or at the end, or
// not at all: --failure-output; passing tests' likewise with --success-output), a live progress
// line only on a terminal, SLOW lines for tests running past --slow-timeout, and a summary whose
// last line is "N passed, N failed[, N skipped]". Text that comes from tests is escaped
// (EscapeForTerminal): it cannot drive the terminal.
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/report.h"

namespace testfarm::coordinator {

enum class Verbosity {
  kQuiet,    // failures (their lines and output) and the summary only
  kNormal,   // also passing and skipped tests, workers joining, slow tests
  kVerbose,  // also a START line per test, and where each test ran (worker, slot)
};

// When a test's captured output (or a GoogleTest case's failure message) is shown.
enum class OutputWhen {
  kNever,
  kImmediate,       // under the test's line, as it finishes
  kFinal,           // after all tests, before the summary
  kImmediateFinal,  // both
};

enum class ColorChoice { kAuto, kAlways, kNever };

struct ConsoleOptions {
  bool progress = false;           // redraw a progress line (stdout is a terminal)
  bool color = false;              // ANSI colours
  std::size_t output_lines = 200;  // lines of a test's output to show per stream
  Verbosity verbosity = Verbosity::kNormal;
  OutputWhen success_output = OutputWhen::kNever;
  OutputWhen failure_output = OutputWhen::kImmediate;
  std::size_t width = 80;     // the terminal's columns: the progress line stays within one row
  std::size_t slowest = 0;    // at the end, list the N slowest tests (--slowest N)
  std::size_t hungriest = 0;  // and the N with the largest peak RSS (--hungriest N)
  // A run of more tests than this (at kNormal) gives a line only to what did not simply pass or
  // skip (failures, flaky tests, retries), and says how far it is every tenth of the run (the
  // terminal's progress line does that anyway): a million lines help no one. kVerbose: every
  // line, whatever the size.
  std::size_t every_line_up_to = 10000;
};

// Decides the defaults from the environment: isatty(stdout), NO_COLOR, TERM=dumb, the window
// size. kAuto: colours on a terminal without NO_COLOR; kAlways: colours even into a pipe (CI
// logs); kNever: none. The progress line needs a terminal whatever the colour choice.
ConsoleOptions ConsoleOptionsFromEnvironment(ColorChoice color = ColorChoice::kAuto);

class ConsoleReporter final : public Reporter {
 public:
  ConsoleReporter(std::FILE* out, ConsoleOptions options);

  void OnRunStart(std::size_t test_count) override;
  void OnWorkerJoined(const std::string& name, unsigned slots) override;
  void OnTestStarted(const std::string& name, const std::string& worker) override;
  void OnTestSlow(const std::string& name, Millis running) override;
  void OnRunning(std::size_t count, const std::string& longest, Millis longest_for) override;
  void OnTestFinished(const TestReport& report, std::size_t running) override;
  void OnRunEnd(const RunSummary& summary) override;

 private:
  void Write(std::string_view text);
  void ClearProgress();
  void DrawProgress();
  std::string ProgressText() const;
  std::string StatusLine(const TestReport& report) const;
  void PrintOutputOf(const TestReport& report);
  void PrintOutput(const std::string& label, const std::string& text);
  void PrintTop(const RunSummary& summary);
  void PrintRepeats(const RunSummary& summary);
  static constexpr std::size_t kRepeatLines = 50;  // then only a count of the always-passing
  std::string Paint(std::string_view word) const;
  bool quiet() const { return options_.verbosity == Verbosity::kQuiet; }
  bool verbose() const { return options_.verbosity == Verbosity::kVerbose; }
  // A large run at kNormal: passing and skipped tests get no line of their own.
  bool terse() const {
    return options_.verbosity == Verbosity::kNormal && total_ > options_.every_line_up_to;
  }

  std::FILE* out_;
  ConsoleOptions options_;
  std::size_t total_ = 0;
  std::size_t finished_ = 0;
  std::size_t failed_ = 0;
  std::size_t running_ = 0;
  std::string longest_;  // escaped; empty: none known
  Millis longest_for_{0};
  bool progress_shown_ = false;
  std::string progress_drawn_;            // what the progress line shows now
  std::vector<TestReport> final_output_;  // tests whose output is shown at the end
};

}  // namespace testfarm::coordinator
