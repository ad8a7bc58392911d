#include "coordinator/report_writers.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>
#include <utility>

#include "shared/exit_state.h"
#include "shared/utf8.h"

namespace testfarm::coordinator {

namespace {

using Json = nlohmann::ordered_json;  // keeps keys in the documented order

// ---------------------------------------------------------------------------------------------
// Outcomes and names shared by the writers.

// How a report counts in JUnit terms. A failure is the test saying no (an assertion, a non-zero
// exit); an error is the test not finishing on its own terms (crash, timeout, leak, could not
// start, worker lost, cancelled or never started because the run stopped). Only a test that
// skipped itself, or is disabled, is skipped: a test that could not run is never a quiet skip.
enum class Outcome { kPassed, kFailure, kError, kSkipped };

Outcome OutcomeOf(const TestReport& report) {
  switch (report.state) {
    case TestStatus::kPassed:
    case TestStatus::kFlaky:  // as Surefire counts it: passed, its failures told apart
      return Outcome::kPassed;
    case TestStatus::kFailed:
      return std::string_view(StatusWord(report)) == "FAIL" ? Outcome::kFailure : Outcome::kError;
    case TestStatus::kExpired:
    case TestStatus::kCancelled:
    case TestStatus::kNotRun:
      return Outcome::kError;
    case TestStatus::kSkipped:
      break;
  }
  return Outcome::kSkipped;
}

// StatusReason, except that a skipped test's process ("exit 0" of a GTEST_SKIP) is not why it
// was skipped: only a reason given or its skip message counts.
std::string Reason(const TestReport& report) {
  if (report.state == TestStatus::kSkipped && report.reason.empty() && report.message.empty())
    return {};
  return StatusReason(report);
}

// Reason, never empty for a test that did not pass: JUnit's message attribute says why.
std::string ReasonOrDefault(const TestReport& report) {
  std::string reason = Reason(report);
  if (!reason.empty()) return reason;
  switch (report.state) {
    case TestStatus::kCancelled:
      return "cancelled";
    case TestStatus::kSkipped:
      return "skipped";
    case TestStatus::kNotRun:
      return "not run";
    case TestStatus::kExpired:
      return "no result from worker";
    case TestStatus::kFailed:
      return "failed";
    case TestStatus::kPassed:
    case TestStatus::kFlaky:
      break;
  }
  return {};
}

const std::string& SuiteOf(const TestReport& report) {
  return report.suite.empty() ? report.name : report.suite;
}

int64_t NonNegative(Millis ms) {
  return std::max<int64_t>(0, ms.count());
}

// ---------------------------------------------------------------------------------------------
// XML text: valid UTF-8, only XML 1.0 characters, markup escaped.

// XML 1.0's Char production.
bool IsXmlChar(char32_t c) {
  return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
         (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

// Appends `text` escaped for XML content or (`attribute`) a double-quoted attribute value.
// Tab, newline and carriage return survive as character references where a parser would
// otherwise normalise them (attributes: all three; content: carriage return).
void AppendXml(std::string& out, std::string_view text, bool attribute) {
  for (std::size_t i = 0; i < text.size();) {
    const Utf8Char d = DecodeUtf8(text, i);
    if (!d.valid || !IsXmlChar(d.code_point)) {
      out += kUtf8Replacement;
    } else if (d.code_point >= 0x80) {
      out += text.substr(i, d.length);
    } else {
      switch (text[i]) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&quot;";
          break;
        case '\'':
          out += "&apos;";
          break;
        case '\r':
          out += "&#13;";
          break;
        case '\n':
          out += attribute ? "&#10;" : "\n";
          break;
        case '\t':
          out += attribute ? "&#9;" : "\t";
          break;
        default:
          out += text[i];
      }
    }
    i += d.length;
  }
}

void Attribute(std::string& out, std::string_view key, std::string_view value) {
  out += ' ';
  out += key;
  out += "=\"";
  AppendXml(out, value, true);
  out += '"';
}

void Element(std::string& out, std::string_view indent, std::string_view tag,
             std::string_view text) {
  out += indent;
  out += '<';
  out += tag;
  out += '>';
  AppendXml(out, text, false);
  out += "</";
  out += tag;
  out += ">\n";
}

// "1.234": seconds with millisecond precision.
std::string Seconds(Millis ms) {
  const int64_t total = NonNegative(ms);
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%lld.%03lld", static_cast<long long>(total / 1000),
                static_cast<long long>(total % 1000));
  return buffer;
}

struct Counts {
  std::size_t tests = 0;
  std::size_t failures = 0;
  std::size_t errors = 0;
  std::size_t skipped = 0;
  Millis time{0};

  void Add(const TestReport& report) {
    ++tests;
    switch (OutcomeOf(report)) {
      case Outcome::kFailure:
        ++failures;
        break;
      case Outcome::kError:
        ++errors;
        break;
      case Outcome::kSkipped:
        ++skipped;
        break;
      case Outcome::kPassed:
        break;
    }
    time += Millis(NonNegative(report.duration));
  }
};

void CountAttributes(std::string& out, const Counts& counts) {
  Attribute(out, "tests", std::to_string(counts.tests));
  Attribute(out, "failures", std::to_string(counts.failures));
  Attribute(out, "errors", std::to_string(counts.errors));
  Attribute(out, "skipped", std::to_string(counts.skipped));
}

// classname and name of a <testcase>: "Suite.Case" splits at its first '.' (gtest suite names,
// typed "Prefix/Suite/0" included, never contain one; case names like "Even/0" may contain '/');
// a plain suite is both.
std::pair<std::string, std::string> JunitNames(const TestReport& report) {
  if (report.case_name.empty()) return {SuiteOf(report), SuiteOf(report)};
  const std::size_t dot = report.case_name.find('.');
  if (dot == std::string::npos) return {SuiteOf(report), report.case_name};
  return {report.case_name.substr(0, dot), report.case_name.substr(dot + 1)};
}

// An earlier, failed attempt of a test that ran again: Surefire's <flakyFailure>/<flakyError>
// when the test then passed, <rerunFailure>/<rerunError> when it failed again.
void AppendEarlierAttempt(std::string& body, const TestReport& attempt, bool flaky) {
  const bool failure = OutcomeOf(attempt) == Outcome::kFailure;
  const std::string tag = std::string(flaky ? "flaky" : "rerun") + (failure ? "Failure" : "Error");
  const std::string reason = ReasonOrDefault(attempt);
  body += "      <" + tag;
  Attribute(body, "message", reason);
  Attribute(body, "type", StatusWord(attempt));
  body += ">\n";
  Element(body, "        ", "stackTrace", attempt.message.empty() ? reason : attempt.message);
  if (attempt.result && !attempt.result->stdout_text.empty())
    Element(body, "        ", "system-out", attempt.result->stdout_text);
  if (attempt.result && !attempt.result->stderr_text.empty())
    Element(body, "        ", "system-err", attempt.result->stderr_text);
  body += "      </" + tag + ">\n";
}

void AppendTestcase(std::string& out, const TestReport& report,
                    const std::vector<const TestReport*>& earlier) {
  const auto [classname, name] = JunitNames(report);
  out += "    <testcase";
  Attribute(out, "name", name);
  Attribute(out, "classname", classname);
  Attribute(out, "time", Seconds(report.duration));

  std::string body;
  // The iteration of a repeated test, and the process's resources from its rusage (a batch's
  // cases share their process's).
  std::vector<std::pair<const char*, uint64_t>> properties;
  if (report.iteration > 1) properties.emplace_back("iteration", report.iteration);
  if (report.result && report.result->peak_rss_kb > 0) {
    properties.emplace_back("peak_rss_kb", report.result->peak_rss_kb);
    properties.emplace_back("cpu_ms", report.result->cpu_ms);
  }
  if (!properties.empty()) {
    body += "      <properties>\n";
    for (const auto& [key, value] : properties) {
      body += "        <property";
      Attribute(body, "name", key);
      Attribute(body, "value", std::to_string(value));
      body += "/>\n";
    }
    body += "      </properties>\n";
  }
  const Outcome outcome = OutcomeOf(report);
  const std::string reason = ReasonOrDefault(report);
  if (outcome == Outcome::kFailure || outcome == Outcome::kError) {
    const char* tag = outcome == Outcome::kFailure ? "failure" : "error";
    body += "      <";
    body += tag;
    Attribute(body, "message", reason);
    Attribute(body, "type", StatusWord(report));
    body += '>';
    AppendXml(body, report.message.empty() ? reason : report.message, false);
    body += "</";
    body += tag;
    body += ">\n";
  } else if (outcome == Outcome::kSkipped) {
    body += "      <skipped";
    Attribute(body, "message", reason);
    if (report.message.empty()) {
      body += "/>\n";
    } else {
      body += '>';
      AppendXml(body, report.message, false);
      body += "</skipped>\n";
    }
  }
  for (const TestReport* attempt : earlier) {
    AppendEarlierAttempt(body, *attempt, report.state == TestStatus::kFlaky);
  }
  // A batch's output is its whole process's; repeating it under every passing case of the
  // batch would multiply the file's size for nothing, so only the cases that went wrong get it.
  const bool with_output = report.result && (!report.batch || outcome == Outcome::kFailure ||
                                             outcome == Outcome::kError);
  if (with_output && !report.result->stdout_text.empty())
    Element(body, "      ", "system-out", report.result->stdout_text);
  if (with_output && !report.result->stderr_text.empty())
    Element(body, "      ", "system-err", report.result->stderr_text);

  if (body.empty()) {
    out += "/>\n";
  } else {
    out += ">\n";
    out += body;
    out += "    </testcase>\n";
  }
}

// ---------------------------------------------------------------------------------------------
// JSON.

// `text` with every line after the first indented by `spaces` more.
std::string Indented(const std::string& text, std::size_t spaces) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    out += c;
    if (c == '\n') out.append(spaces, ' ');
  }
  return out;
}

std::string Dump(const Json& json, int indent) {
  // Invalid UTF-8 in captured output must not throw: it becomes U+FFFD.
  return json.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json ProcessJson(const protocol::JobResult& result) {
  const ExitState& state = result.state;
  const ExitState::Kind kind = state.kind();
  const bool exited = kind == ExitState::Kind::kExited || kind == ExitState::Kind::kLeaked;
  Json process = Json::object();
  process["outcome"] = KindName(kind);
  process["exit_code"] = exited ? Json(state.exit_code()) : Json(nullptr);
  process["signal"] =
      kind == ExitState::Kind::kSignaled ? Json(SignalName(state.signal())) : Json(nullptr);
  process["core_dumped"] = state.core_dumped();
  process["detail"] = state.detail();
  process["duration_ms"] = result.duration_ms;
  process["stdout"] = result.stdout_text;
  process["stderr"] = result.stderr_text;
  process["stdout_dropped"] = result.stdout_dropped;
  process["stderr_dropped"] = result.stderr_dropped;
  process["peak_rss_kb"] = result.peak_rss_kb;
  process["cpu_ms"] = result.cpu_ms;
  return process;
}

Json AttemptJson(const TestReport& report) {
  Json attempt = Json::object();
  attempt["name"] = report.name;
  attempt["suite"] = report.suite;
  attempt["case"] = report.case_name.empty() ? Json(nullptr) : Json(report.case_name);
  attempt["status"] = StatusKey(report.state);
  attempt["status_word"] = StatusWord(report);
  attempt["reason"] = Reason(report);
  attempt["message"] = report.message;
  attempt["duration_ms"] = NonNegative(report.duration);
  attempt["worker"] = report.worker.empty() ? Json(nullptr) : Json(report.worker);
  attempt["slot"] = report.slot;
  attempt["started_ms"] = report.started_at.count();
  attempt["finished_ms"] = report.finished_at.count();
  attempt["attempt"] = report.attempt;
  attempt["batch"] = report.batch;
  attempt["retried"] = report.retried;
  attempt["iteration"] = report.iteration;
  attempt["process"] = report.result ? ProcessJson(*report.result) : Json(nullptr);
  return attempt;
}

Json RunJson(const std::vector<TestReport>& reports, const RunInfo& info) {
  // A test (each iteration of a repeated one) is counted once, by its last attempt (highest
  // `attempt`; the later report on a tie).
  std::map<std::pair<std::string_view, unsigned>, const TestReport*> last;
  for (const TestReport& report : reports) {
    if (report.retried) continue;  // each test has exactly one report that is not
    auto [it, inserted] = last.try_emplace({report.name, report.iteration}, &report);
    if (!inserted && report.attempt >= it->second->attempt) it->second = &report;
  }
  // The same five totals as the console's summary line.
  std::map<std::string_view, std::size_t> counts = {
      {"passed", 0}, {"failed", 0}, {"flaky", 0}, {"skipped", 0}, {"cancelled", 0}, {"not_run", 0}};
  for (const auto& [name, report] : last) {
    std::string_view key = StatusKey(report->state);
    ++counts[key == "lost" ? "failed" : key];
  }
  Json run = Json::object();
  run["hostname"] = info.hostname;
  run["started_utc"] = info.started_utc;
  run["wall_ms"] = NonNegative(info.wall);
  run["tests"] = last.size();
  for (const char* key : {"passed", "failed", "flaky", "skipped", "cancelled", "not_run"}) {
    run[key] = counts[key];
  }
  return run;
}

// ---------------------------------------------------------------------------------------------
// Chrome trace.

constexpr int64_t kMicrosPerMilli = 1000;

Json MetadataEvent(const char* name, int pid, uint32_t tid, Json args) {
  Json event = Json::object();
  event["name"] = name;
  event["ph"] = "M";
  event["pid"] = pid;
  event["tid"] = tid;
  event["args"] = std::move(args);
  return event;
}

// Where an attempt sits on its slot's track, in milliseconds since the run started.
struct Span {
  int64_t start;
  int64_t length;
};

// Lays attempts out: a lone process spans started_at..finished_at; the cases of a batch (same
// worker, slot and process start) follow one another from the process's start, each as long as
// its own duration, none reaching past the process's end.
class TraceLayout {
 public:
  Span Place(const TestReport& report) {
    const int64_t started = report.started_at.count();
    const int64_t finished = report.finished_at.count();
    const int64_t duration = NonNegative(report.duration);
    if (!report.batch) return {started, finished > started ? finished - started : duration};
    int64_t& cursor =
        cursors_.try_emplace({report.worker, report.slot, started}, started).first->second;
    Span span{cursor, duration};
    if (finished > started) {
      span.start = std::min(span.start, finished);
      span.length = std::min(span.length, finished - span.start);
    }
    cursor = span.start + span.length;
    return span;
  }

 private:
  std::map<std::tuple<std::string, uint32_t, int64_t>, int64_t> cursors_;
};

}  // namespace

void WriteJunitXml(const std::vector<TestReport>& reports, const RunInfo& info,
                   std::ostream& stream) {
  std::vector<std::string_view> order;
  std::map<std::string_view, std::vector<const TestReport*>> suites;
  // A test's retried attempts go inside its testcase (by name and iteration), not beside it.
  std::map<std::pair<std::string_view, unsigned>, std::vector<const TestReport*>> earlier;
  Counts total;
  for (const TestReport& report : reports) {
    if (report.retried) {
      earlier[{report.name, report.iteration}].push_back(&report);
      continue;
    }
    auto [it, inserted] = suites.try_emplace(SuiteOf(report));
    if (inserted) order.push_back(it->first);
    it->second.push_back(&report);
    total.Add(report);
  }

  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites";
  Attribute(out, "name", "testfarm");
  CountAttributes(out, total);
  Attribute(out, "time", Seconds(info.wall));
  out += ">\n";
  // Written a testcase at a time: the text in memory is one testcase's, not the report's.
  auto flush = [&] {
    stream << out;
    out.clear();
  };
  flush();
  for (std::string_view suite : order) {
    const std::vector<const TestReport*>& cases = suites[suite];
    Counts counts;
    for (const TestReport* report : cases) counts.Add(*report);
    out += "  <testsuite";
    Attribute(out, "name", suite);
    CountAttributes(out, counts);
    Attribute(out, "time", Seconds(counts.time));
    if (!info.started_utc.empty()) Attribute(out, "timestamp", info.started_utc);
    if (!info.hostname.empty()) Attribute(out, "hostname", info.hostname);
    out += ">\n";
    for (const TestReport* report : cases) {
      auto attempts = earlier.find({report->name, report->iteration});
      if (attempts == earlier.end()) {
        AppendTestcase(out, *report, {});
      } else {
        AppendTestcase(out, *report, attempts->second);
        earlier.erase(attempts);
      }
      flush();
    }
    out += "  </testsuite>\n";
  }
  out += "</testsuites>\n";
  flush();
}

void WriteJsonReport(const std::vector<TestReport>& reports, const RunInfo& info,
                     std::ostream& out) {
  // An attempt at a time, indented as one document would be.
  out << "{\n  \"testfarm_report\": 2,\n  \"run\": " << Indented(Dump(RunJson(reports, info), 2), 2)
      << ",\n  \"attempts\": [";
  bool first = true;
  for (const TestReport& report : reports) {
    out << (first ? "\n    " : ",\n    ") << Indented(Dump(AttemptJson(report), 2), 4);
    first = false;
  }
  out << (first ? "]" : "\n  ]") << "\n}\n";
}

void WriteChromeTrace(const std::vector<TestReport>& reports, const RunInfo& info,
                      std::ostream& out) {
  // pids 1, 2, ... by worker name (stable whatever order the reports come in); tid = slot.
  std::map<std::string_view, int> pids;
  std::set<std::pair<std::string_view, uint32_t>> threads;
  for (const TestReport& report : reports) {
    if (report.worker.empty()) continue;  // never ran: nothing to draw
    pids.try_emplace(report.worker, 0);
    threads.emplace(report.worker, report.slot);
  }
  int next_pid = 1;
  for (auto& [worker, pid] : pids) pid = next_pid++;

  // An event at a time: the text in memory is one event's, not the trace's.
  out << "{\"traceEvents\":[";
  bool first = true;
  auto write = [&](const Json& event) {
    out << (first ? "" : ",") << Dump(event, -1);
    first = false;
  };
  for (const auto& [worker, pid] : pids) {
    write(MetadataEvent("process_name", pid, 0, {{"name", worker}}));
    write(MetadataEvent("process_sort_index", pid, 0, {{"sort_index", pid}}));
  }
  for (const auto& [worker, slot] : threads) {
    const int pid = pids.at(worker);
    write(MetadataEvent("thread_name", pid, slot, {{"name", "slot " + std::to_string(slot)}}));
    write(MetadataEvent("thread_sort_index", pid, slot, {{"sort_index", slot}}));
  }

  TraceLayout layout;
  for (const TestReport& report : reports) {
    if (report.worker.empty()) continue;
    const Span span = layout.Place(report);
    Json event = Json::object();
    event["name"] = report.name;
    event["cat"] = StatusKey(report.state);
    event["ph"] = "X";
    event["ts"] = span.start * kMicrosPerMilli;
    event["dur"] = span.length * kMicrosPerMilli;
    event["pid"] = pids.at(report.worker);
    event["tid"] = report.slot;
    event["args"] = {{"status", StatusWord(report)}, {"reason", Reason(report)}};
    if (report.result && report.result->peak_rss_kb > 0) {
      event["args"]["peak_rss_kb"] = report.result->peak_rss_kb;
      event["args"]["cpu_ms"] = report.result->cpu_ms;
    }
    write(event);
  }
  Json other = {{"hostname", info.hostname}, {"started_utc", info.started_utc}};
  out << "],\"displayTimeUnit\":\"ms\",\"otherData\":" << Dump(other, -1) << "}\n";
}

namespace {

std::string Render(void (*write)(const std::vector<TestReport>&, const RunInfo&, std::ostream&),
                   const std::vector<TestReport>& reports, const RunInfo& info) {
  std::ostringstream out;
  write(reports, info, out);
  return std::move(out).str();
}

}  // namespace

std::string JunitXml(const std::vector<TestReport>& reports, const RunInfo& info) {
  return Render(WriteJunitXml, reports, info);
}

std::string JsonReport(const std::vector<TestReport>& reports, const RunInfo& info) {
  return Render(WriteJsonReport, reports, info);
}

std::string ChromeTrace(const std::vector<TestReport>& reports, const RunInfo& info) {
  return Render(WriteChromeTrace, reports, info);
}

}  // namespace testfarm::coordinator
