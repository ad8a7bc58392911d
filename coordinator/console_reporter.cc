#include "coordinator/console_reporter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "shared/duration.h"

namespace testfarm::coordinator {

namespace {

const char* ColorOf(std::string_view word) {
  if (word == "PASS") return "\033[32m";
  if (word == "SKIP" || word == "CANCEL") return "\033[33m";
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

// "  (reason)" or nothing.
std::string Parenthesized(const std::string& reason) {
  return reason.empty() ? std::string() : "  (" + reason + ")";
}

}  // namespace

ConsoleOptions ConsoleOptionsFromEnvironment() {
  ConsoleOptions options;
  bool tty = ::isatty(STDOUT_FILENO) == 1;
  const char* term = std::getenv("TERM");
  bool dumb = term != nullptr && std::strcmp(term, "dumb") == 0;
  const char* no_color = std::getenv("NO_COLOR");
  options.progress = tty && !dumb;
  options.color = tty && !dumb && (no_color == nullptr || no_color[0] == '\0');
  return options;
}

std::string ConsoleReporter::Paint(const char* word) const {
  if (!options_.color) return word;
  return std::string(ColorOf(word)) + word + "\033[0m";
}

void ConsoleReporter::ClearProgress() {
  if (!progress_shown_) return;
  std::fputs("\r\033[K", out_);
  progress_shown_ = false;
}

void ConsoleReporter::DrawProgress(std::size_t running) {
  if (!options_.progress || finished_ >= total_) return;
  std::fprintf(out_, "[%zu/%zu] %zu running, %zu failed", finished_, total_, running, failed_);
  progress_shown_ = true;
}

void ConsoleReporter::OnRunStart(std::size_t test_count) {
  total_ = test_count;
  std::fprintf(out_, "testfarm: %zu test%s\n", test_count, test_count == 1 ? "" : "s");
  DrawProgress(0);
  std::fflush(out_);
}

void ConsoleReporter::OnWorkerJoined(const std::string& name, unsigned slots) {
  ClearProgress();
  std::fprintf(out_, "testfarm: worker %s joined with %u slot%s\n", name.c_str(), slots,
               slots == 1 ? "" : "s");
  DrawProgress(0);
  std::fflush(out_);
}

void ConsoleReporter::PrintOutput(const std::string& label, const std::string& text) {
  if (text.empty()) return;
  std::size_t cut = 0;
  std::string shown = LastLines(text, options_.output_lines, &cut);
  std::fprintf(out_, "    --- %s", label.c_str());
  if (cut > 0)
    std::fprintf(out_, " (last %zu lines; %zu earlier not shown)", options_.output_lines, cut);
  std::fputs(" ---\n", out_);
  std::size_t start = 0;
  while (start < shown.size()) {
    std::size_t nl = shown.find('\n', start);
    std::size_t end = nl == std::string::npos ? shown.size() : nl;
    std::fprintf(out_, "    %.*s\n", static_cast<int>(end - start), shown.data() + start);
    start = end + 1;
  }
}

void ConsoleReporter::OnTestFinished(const TestReport& report, std::size_t running) {
  ++finished_;
  bool failed = report.state == JobState::kFailed || report.state == JobState::kExpired;
  if (failed) ++failed_;
  ClearProgress();
  Millis duration = report.duration;
  const char* word = StatusWord(report);
  int pad = 8 - static_cast<int>(std::strlen(word));
  std::fprintf(out_, "%s%*s%8s  %s%s\n", Paint(word).c_str(), pad, "",
               FormatDuration(duration).c_str(), report.name.c_str(),
               Parenthesized(StatusReason(report)).c_str());
  if (failed && !report.message.empty()) {
    PrintOutput("failure", report.message);  // gtest's own account beats the process's output
  } else if (failed && report.result) {
    PrintOutput("stdout", report.result->stdout_text);
    PrintOutput("stderr", report.result->stderr_text);
  }
  DrawProgress(running);
  std::fflush(out_);
}

void ConsoleReporter::OnRunEnd(const RunSummary& summary) {
  ClearProgress();
  std::vector<const TestReport*> failures = summary.Failures();
  if (!failures.empty()) {
    std::fprintf(out_, "\nFailed tests:\n");
    for (const TestReport* report : failures) {
      std::fprintf(out_, "  %-8s %s%s\n", StatusWord(*report), report->name.c_str(),
                   Parenthesized(StatusReason(*report)).c_str());
    }
  }
  if (!summary.stop_reason.empty())
    std::fprintf(out_, "\nStopped early: %s\n", summary.stop_reason.c_str());
  std::fprintf(out_, "\n%zu test%s in %s\n", summary.total(), summary.total() == 1 ? "" : "s",
               FormatDuration(summary.wall).c_str());
  std::fprintf(out_, "%s\n", SummaryLine(summary).c_str());
  std::fflush(out_);
}

}  // namespace testfarm::coordinator
