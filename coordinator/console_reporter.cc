#include "coordinator/console_reporter.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "shared/duration.h"
#include "shared/terminal_text.h"

namespace testfarm::coordinator {

namespace {

const char* ColorOf(std::string_view word) {
  if (word == "PASS") return "\033[32m";
  if (word == "SKIP" || word == "CANCEL" || word == "SLOW" || word == "FLAKY" || word == "RETRY")
    return "\033[33m";
  if (word == "START") return "\033[36m";
  return "\033[31;1m";
}

// Keeps the last `limit` lines of `text`; `*cut` says how many earlier lines were left out.
std::string LastLines(const std::string& text, std::size_t limit, std::size_t* cut) {
  std::size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (std::size_t kept = 0; kept < limit; ++kept) {
    std::size_t nl = pos == 0 ? std::string::npos : text.rfind('\n', pos - 1);
    if (nl == std::string::npos) {
      *cut = 0;
      return text;
    }
    pos = nl;
  }
  *cut = static_cast<std::size_t>(std::count(text.begin(), text.begin() + pos + 1, '\n'));
  return text.substr(pos + 1);
}

// "  (reason)" or nothing; the reason escaped.
std::string Parenthesized(const std::string& reason) {
  return reason.empty() ? std::string() : "  (" + EscapeForTerminal(reason) + ")";
}

bool Immediate(OutputWhen when) {
  return when == OutputWhen::kImmediate || when == OutputWhen::kImmediateFinal;
}

bool Final(OutputWhen when) {
  return when == OutputWhen::kFinal || when == OutputWhen::kImmediateFinal;
}

// Display columns of UTF-8 text, approximately: one per code point.
std::size_t Columns(std::string_view text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xc0) != 0x80;
  }));
}

// The first `columns` columns of `text` (never splitting a UTF-8 sequence).
std::string FirstColumns(const std::string& text, std::size_t columns) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xc0) == 0x80) continue;
    if (seen++ == columns) return text.substr(0, i);
  }
  return text;
}

// "12.3 MiB": a size given in KiB.
std::string FormatKib(uint64_t kib) {
  char text[32];
  if (kib < 1024) {
    std::snprintf(text, sizeof text, "%llu KiB", static_cast<unsigned long long>(kib));
  } else if (kib < 1024 * 1024) {
    std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(kib) / 1024);
  } else {
    std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(kib) / (1024 * 1024));
  }
  return text;
}

// The `n` reports that ran a process, largest `key` first (ties in finishing order).
template <typename Key>
std::vector<const TestReport*> Largest(const RunSummary& summary, std::size_t n, Key key) {
  std::vector<const TestReport*> ran;
  for (const TestReport& report : summary.reports) {
    if (report.result) ran.push_back(&report);
  }
  std::stable_sort(ran.begin(), ran.end(),
                   [&](const TestReport* a, const TestReport* b) { return key(*a) > key(*b); });
  if (ran.size() > n) ran.resize(n);
  return ran;
}

}  // namespace

ConsoleOptions ConsoleOptionsFromEnvironment(ColorChoice color) {
  ConsoleOptions options;
  bool tty = ::isatty(STDOUT_FILENO) == 1;
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  const char* no_color = std::getenv("NO_COLOR");
  options.progress = tty && !dumb;
  switch (color) {
    case ColorChoice::kAuto:
      options.color = tty && !dumb && (no_color == nullptr || no_color[0] == '\0');
      break;
    case ColorChoice::kAlways:
      options.color = true;
      break;
    case ColorChoice::kNever:
      options.color = false;
      break;
  }
  winsize size{};
  if (tty && ::ioctl(STDOUT_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
    options.width = size.ws_col;
  }
  return options;
}

ConsoleReporter::ConsoleReporter(std::FILE* out, ConsoleOptions options)
    : out_(out), options_(options) {
  if (quiet()) options_.progress = false;
}

void ConsoleReporter::Write(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), out_);
}

std::string ConsoleReporter::Paint(std::string_view word) const {
  if (!options_.color) return std::string(word);
  return std::string(ColorOf(word)) + std::string(word) + "\033[0m";
}

void ConsoleReporter::ClearProgress() {
  if (!progress_shown_) return;
  Write("\r\033[K");
  progress_shown_ = false;
  progress_drawn_.clear();
}

std::string ConsoleReporter::ProgressText() const {
  std::string text = "[" + std::to_string(finished_) + "/" + std::to_string(total_) + "] " +
                     std::to_string(running_) + " running, " + std::to_string(failed_) + " failed";
  if (!longest_.empty() && running_ > 0) {
    text += "; longest " + FormatDuration(longest_for_) + ": " + longest_;
  }
  // Within one row, so that "\r\033[K" erases all of it.
  std::size_t room = options_.width > 1 ? options_.width - 1 : 1;
  if (Columns(text) > room) text = FirstColumns(text, room > 3 ? room - 3 : room) + "...";
  return text;
}

void ConsoleReporter::DrawProgress() {
  if (!options_.progress || finished_ >= total_) return;
  std::string text = ProgressText();
  if (progress_shown_ && text == progress_drawn_) return;
  ClearProgress();
  Write(text);
  progress_shown_ = true;
  progress_drawn_ = std::move(text);
}

void ConsoleReporter::OnRunStart(std::size_t test_count) {
  total_ = test_count;
  if (!quiet()) {
    std::fprintf(out_, "testfarm: %zu test%s\n", test_count, test_count == 1 ? "" : "s");
  }
  if (terse()) {
    std::fprintf(out_,
                 "testfarm: more than %zu tests: a line for each that fails or is flaky, and the "
                 "progress every tenth (-v: a line for every test)\n",
                 options_.every_line_up_to);
  }
  DrawProgress();
  std::fflush(out_);
}

void ConsoleReporter::OnWorkerJoined(const std::string& name, unsigned slots) {
  if (quiet()) return;
  ClearProgress();
  Write("testfarm: worker " + EscapeForTerminal(name) + " joined with " + std::to_string(slots) +
        (slots == 1 ? " slot\n" : " slots\n"));
  DrawProgress();
  std::fflush(out_);
}

void ConsoleReporter::OnTestStarted(const std::string& name, const std::string& worker) {
  if (!verbose()) return;
  ClearProgress();
  std::string line = Paint("START") + std::string(3 + 8, ' ') + "  " + EscapeForTerminal(name);
  if (!worker.empty()) line += "  [worker " + EscapeForTerminal(worker) + "]";
  Write(line + "\n");
  DrawProgress();
  std::fflush(out_);
}

void ConsoleReporter::OnTestSlow(const std::string& name, Millis running) {
  if (quiet()) return;
  ClearProgress();
  // Not "SLOW  1.00s  name": a parser of per-test result lines must not take it for one.
  std::string duration = ">" + FormatDuration(running);
  char columns[32];
  std::snprintf(columns, sizeof columns, "    %8s  ", duration.c_str());
  Write(Paint("SLOW") + columns + EscapeForTerminal(name) + "\n");
  DrawProgress();
  std::fflush(out_);
}

void ConsoleReporter::OnRunning(std::size_t count, const std::string& longest, Millis longest_for) {
  running_ = count;
  longest_ = EscapeForTerminal(longest);
  longest_for_ = longest_for;
  if (!options_.progress) return;
  DrawProgress();
  std::fflush(out_);
}

std::string ConsoleReporter::StatusLine(const TestReport& report) const {
  // An attempt that runs again says what happened and that it is not the test's last word.
  const char* word = report.retried ? "RETRY" : StatusWord(report);
  const std::string reason =
      report.retried ? std::string(StatusWord(report)) +
                           (StatusReason(report).empty() ? "" : " " + StatusReason(report)) +
                           "; attempt " + std::to_string(report.attempt) + ", it runs again"
                     : StatusReason(report);
  char columns[32];
  std::snprintf(columns, sizeof columns, "%*s%8s  ", 8 - static_cast<int>(std::strlen(word)), "",
                FormatDuration(report.duration).c_str());
  std::string line = Paint(word) + columns + EscapeForTerminal(report.name) +
                     (report.iteration > 1 ? " #" + std::to_string(report.iteration) : "") +
                     Parenthesized(reason);
  if (verbose() && !report.worker.empty()) {
    line += "  [worker " + EscapeForTerminal(report.worker);
    if (report.result) line += ", slot " + std::to_string(report.slot);
    line += "]";
  }
  return line + "\n";
}

void ConsoleReporter::PrintOutput(const std::string& label, const std::string& text) {
  if (text.empty()) return;
  std::size_t cut = 0;
  std::string shown =
      LastLines(EscapeForTerminal(text, Newlines::kKeep), options_.output_lines, &cut);
  std::string block = "    --- " + label;
  if (cut > 0) {
    block += " (last " + std::to_string(options_.output_lines) + " lines; " + std::to_string(cut) +
             " earlier not shown)";
  }
  block += " ---\n";
  std::size_t start = 0;
  while (start < shown.size()) {
    std::size_t nl = shown.find('\n', start);
    std::size_t end = nl == std::string::npos ? shown.size() : nl;
    block += "    ";
    block.append(shown, start, end - start);
    block += "\n";
    start = end + 1;
  }
  Write(block);
}

void ConsoleReporter::PrintOutputOf(const TestReport& report) {
  if (IsFailure(report.state) && !report.message.empty()) {
    PrintOutput("failure", report.message);  // gtest's own account beats the process's output
  } else if (report.result) {
    PrintOutput("stdout", report.result->stdout_text);
    PrintOutput("stderr", report.result->stderr_text);
  }
}

void ConsoleReporter::OnTestFinished(const TestReport& report, std::size_t running) {
  running_ = running;
  // A retried attempt shows as a failure does (its output included) but is not counted: the
  // test is not finished yet.
  bool failed = IsFailure(report.state);
  if (!report.retried) {
    ++finished_;
    if (failed) ++failed_;
  }
  OutputWhen when = failed                                ? options_.failure_output
                    : report.state == TestStatus::kPassed ? options_.success_output
                                                          : OutputWhen::kNever;
  ClearProgress();
  // A repeated test's passing copies are told once, by its first iteration (and summed up at
  // the end); what fails is always shown.
  const bool repeat_of_a_pass = report.iteration > 1 && !failed && !report.retried &&
                                report.state != TestStatus::kFlaky && !verbose();
  if (repeat_of_a_pass) when = OutputWhen::kNever;
  // What a large run does not give a line: a test that simply passed or skipped. A cancelled or
  // not-run test is told, as a failure is.
  const bool plain = !report.retried &&
                     (report.state == TestStatus::kPassed || report.state == TestStatus::kSkipped);
  const bool told = (failed || !quiet()) && !repeat_of_a_pass && !(terse() && plain);
  if (told) Write(StatusLine(report));
  if (Immediate(when) && !(terse() && plain)) PrintOutputOf(report);
  if (Final(when)) final_output_.push_back(report);
  bool progress_said = false;
  if (terse() && !options_.progress && !report.retried) {
    // Every tenth of the run: how far it is.
    const std::size_t tenth = std::max<std::size_t>(1, total_ / 10);
    if (finished_ % tenth == 0 && finished_ < total_) {
      Write("testfarm: " + std::to_string(finished_) + " of " + std::to_string(total_) +
            " finished (" + std::to_string(finished_ * 100 / total_) + "%), " +
            std::to_string(failed_) + " failed\n");
      progress_said = true;
    }
  }
  DrawProgress();
  if (told || progress_said || options_.progress || !plain) std::fflush(out_);
}

void ConsoleReporter::OnRunEnd(const RunSummary& summary) {
  ClearProgress();
  if (!final_output_.empty()) {
    Write("\n");
    for (const TestReport& report : final_output_) {
      Write(StatusLine(report));
      PrintOutputOf(report);
    }
  }
  PrintTop(summary);
  PrintRepeats(summary);
  std::vector<const TestReport*> failures = summary.Failures();
  if (!failures.empty()) {
    Write("\nFailed tests:\n");
    for (const TestReport* report : failures) {
      char word[16];
      std::snprintf(word, sizeof word, "  %-8s ", StatusWord(*report));
      Write(word + EscapeForTerminal(report->name) +
            (report->iteration > 1 ? " #" + std::to_string(report->iteration) : "") +
            Parenthesized(StatusReason(*report)) + "\n");
    }
  }
  std::vector<const TestReport*> flaky = summary.Flaky();
  if (!flaky.empty()) {
    Write("\nFlaky tests (failed, then passed on a retry):\n");
    for (const TestReport* report : flaky) {
      Write("  FLAKY    " + EscapeForTerminal(report->name) + Parenthesized(StatusReason(*report)) +
            "\n");
    }
  }
  if (!summary.stop_reason.empty()) {
    Write("\nStopped early: " + EscapeForTerminal(summary.stop_reason) + "\n");
  }
  Write("\n" + std::to_string(summary.total()) + (summary.total() == 1 ? " test" : " tests") +
        " in " + FormatDuration(summary.wall) + "\n");
  Write(SummaryLine(summary) + "\n");
  std::fflush(out_);
}

void ConsoleReporter::PrintTop(const RunSummary& summary) {
  // The cases of a batch share their process's peak RSS and CPU: "(batch)" says so.
  auto line = [&](const TestReport& report, const std::string& figure, const std::string& other) {
    char column[32];
    std::snprintf(column, sizeof column, "  %10s  ", figure.c_str());
    Write(column + EscapeForTerminal(report.name) + "  (" + other +
          (report.batch ? ", batch" : "") + ")\n");
  };
  if (options_.slowest > 0) {
    auto top =
        Largest(summary, options_.slowest, [](const TestReport& r) { return r.duration.count(); });
    if (!top.empty()) Write("\nSlowest " + std::to_string(top.size()) + ":\n");
    for (const TestReport* report : top) {
      line(*report, FormatDuration(report->duration),
           FormatKib(report->result->peak_rss_kb) + " peak");
    }
  }
  if (options_.hungriest > 0) {
    auto top = Largest(summary, options_.hungriest,
                       [](const TestReport& r) { return r.result->peak_rss_kb; });
    if (!top.empty()) Write("\nLargest peak RSS " + std::to_string(top.size()) + ":\n");
    for (const TestReport* report : top) {
      line(*report, FormatKib(report->result->peak_rss_kb),
           FormatDuration(report->duration) + ", " +
               FormatDuration(Millis(report->result->cpu_ms)) + " CPU");
    }
  }
}

void ConsoleReporter::PrintRepeats(const RunSummary& summary) {
  if (summary.iterations <= 1) return;
  // Per test (in the order first seen): how many of its iterations passed, by last attempt.
  struct Tally {
    std::size_t passed = 0;
    std::size_t ran = 0;
  };
  std::vector<std::string> order;
  std::map<std::string, Tally> tallies;
  for (const TestReport& report : summary.reports) {
    if (report.retried) continue;
    auto [it, added] = tallies.try_emplace(report.name);
    if (added) order.push_back(report.name);
    ++it->second.ran;
    if (report.state == TestStatus::kPassed || report.state == TestStatus::kFlaky ||
        report.state == TestStatus::kSkipped) {
      ++it->second.passed;
    }
  }
  // Those that failed some iteration first, then the rest.
  std::stable_partition(order.begin(), order.end(), [&](const std::string& name) {
    return tallies[name].passed < tallies[name].ran;
  });
  Write("\n" + std::to_string(summary.iterations) + " iterations:\n");
  std::size_t shown = 0;
  for (const std::string& name : order) {
    const Tally& tally = tallies[name];
    if (shown == kRepeatLines && tally.passed == tally.ran) {
      Write("  ... and " + std::to_string(order.size() - shown) +
            " more tests that passed every time\n");
      break;
    }
    char line[96];
    std::snprintf(
        line, sizeof line, "  passed %zu of %zu (%.1f%% failed)  ", tally.passed, tally.ran,
        100.0 * static_cast<double>(tally.ran - tally.passed) / static_cast<double>(tally.ran));
    Write(line + EscapeForTerminal(name) + "\n");
    ++shown;
  }
}

}  // namespace testfarm::coordinator
