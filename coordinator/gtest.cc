#include "coordinator/gtest.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "shared/unique_fd.h"
#include "shared/utf8.h"

namespace testfarm::coordinator {
namespace {

// --- IsGtestBinary -------------------------------------------------------------------------

// A static gtest carries its flag names (in --help's text); a dynamic one imports gtest's
// symbols, whose mangled names start like these.
constexpr std::array<std::string_view, 4> kGtestMarks = {
    "--gtest_list_tests", "gtest_filter", "_ZN7testing4Test", "_ZN7testing8internal"};

constexpr std::size_t LongestMark() {
  std::size_t longest = 0;
  for (std::string_view mark : kGtestMarks) longest = std::max(longest, mark.size());
  return longest;
}

bool ContainsMark(std::string_view text) {
  return std::any_of(kGtestMarks.begin(), kGtestMarks.end(),
                     [text](std::string_view mark) { return text.find(mark) != text.npos; });
}

// read(2) retried on EINTR; -1 on error.
ssize_t ReadSome(int fd, char* buffer, std::size_t size) {
  ssize_t n;
  do {
    n = ::read(fd, buffer, size);
  } while (n < 0 && errno == EINTR);
  return n;
}

bool IsElfRegularFile(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return false;
  constexpr char kElfMagic[] = {0x7f, 'E', 'L', 'F'};
  char magic[sizeof kElfMagic];
  ssize_t n;
  do {
    n = ::pread(fd, magic, sizeof magic, 0);
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof magic) &&
         std::memcmp(magic, kElfMagic, sizeof magic) == 0;
}

// --- ParseGtestList ------------------------------------------------------------------------

bool IsBlank(char c) {
  return c == ' ' || c == '\t';
}

// A listing line is a name token, then optionally blanks and a "# ..." comment (gtest prints
// "  # TypeParam = int" and "  # GetParam() = 2"). Returns the token, or nullopt.
std::optional<std::string_view> ListedName(std::string_view line) {
  std::size_t begin = 0;
  while (begin < line.size() && IsBlank(line[begin])) ++begin;
  std::size_t end = begin;
  while (end < line.size() && !IsBlank(line[end])) ++end;
  if (end == begin) return std::nullopt;
  std::size_t rest = end;
  while (rest < line.size() && IsBlank(line[rest])) ++rest;
  if (rest < line.size() && line[rest] != '#') return std::nullopt;
  return line.substr(begin, end - begin);
}

// gtest's own rule (kDisableTestFilter "DISABLED_*:*/DISABLED_*"), applied to the suite name
// and the case name.
bool IsDisabledName(std::string_view name) {
  return name.starts_with("DISABLED_") || name.find("/DISABLED_") != name.npos;
}

std::string Quoted(std::string_view line) {
  constexpr std::size_t kMax = 200;
  std::string text(line.substr(0, kMax));
  if (line.size() > kMax) text += "...";
  return "'" + text + "'";
}

Error ListError(std::size_t line_number, std::string_view what, std::string_view line) {
  return Error{"gtest listing, line " + std::to_string(line_number) + ": " + std::string(what) +
               ": " + Quoted(line)};
}

// --- ParseGtestJson ------------------------------------------------------------------------

using Json = nlohmann::json;

// gtest escapes control characters but copies other bytes as they are, so a failure message
// can hold bytes that are not UTF-8, which nlohmann rejects. Each byte that does not start a
// well-formed sequence becomes U+FFFD.
std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    Utf8Char c = DecodeUtf8(text, i);
    if (!c.valid) {
      out += kUtf8Replacement;
      ++i;
    } else {
      out.append(text.substr(i, c.length));
      i += c.length;
    }
  }
  return out;
}

// `text` itself when it is all well-formed UTF-8 (gtest's reports nearly always are: no copy),
// else its ValidUtf8 form, kept in `repaired`.
std::string_view AsValidUtf8(std::string_view text, std::string& repaired) {
  for (std::size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    Utf8Char c = DecodeUtf8(text, i);
    if (!c.valid) return repaired = ValidUtf8(text);
    i += c.length;
  }
  return text;
}

// "0.123s" (gtest prints seconds as a double with 6 significant digits, so also "1.23457e+06s").
Millis ParseSeconds(const std::string& text) {
  std::string_view digits = text;
  if (digits.ends_with('s')) digits.remove_suffix(1);
  double seconds = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), seconds);
  if (error != std::errc() || end != digits.data() + digits.size() || !std::isfinite(seconds) ||
      seconds < 0) {
    return Millis(0);
  }
  return Millis(std::llround(seconds * 1000));
}

// Reads gtest's JSON report event by event (no document tree: a shard of 50,000 cases is read
// several times faster so). What it checks, and the errors it names, follow the report's shape:
//   {"testsuites": [ {"name", "testsuite": [ {"name", "status", "result", "time",
//                                             "failures": [ {"failure"} ]} ]} ]}
// Anything else gtest writes (counts, timestamps, properties) is passed over.
class ReportReader : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return Scalar(nullptr); }
  bool boolean(bool) override { return Scalar(nullptr); }
  bool number_integer(number_integer_t) override { return Scalar(nullptr); }
  bool number_unsigned(number_unsigned_t) override { return Scalar(nullptr); }
  bool number_float(number_float_t, const string_t&) override { return Scalar(nullptr); }
  bool binary(binary_t&) override { return Scalar(nullptr); }
  bool string(string_t& value) override { return Scalar(&value); }
  bool key(string_t& value) override {
    key_ = value;
    return true;
  }
  bool start_object(std::size_t) override { return Open(true); }
  bool start_array(std::size_t) override { return Open(false); }
  bool end_object() override { return Close(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t, const std::string&,
                   const nlohmann::detail::exception& error) override {
    if (error_.empty()) error_ = error.what();
    return false;
  }

  Result<std::vector<GtestCaseResult>> Take() {
    if (!error_.empty()) return Error{"not a gtest JSON report: " + error_};
    return std::move(results_);
  }

 private:
  // What an open container is, on the report's shape; kOther for anything off it.
  enum class Role { kTop, kSuites, kSuite, kCases, kCase, kFailures, kFailure, kOther };
  struct Frame {
    Role role;
    std::size_t items = 0;  // for an array: elements opened so far
  };
  // One suite's fields (its cases wait for its name, which may come after them).
  struct SuiteFields {
    std::optional<std::string> name;
    bool has_cases = false;
    std::vector<GtestCaseResult> results;
    std::string case_error;  // the first of its cases' errors, reported after its own
  };
  struct CaseFields {
    std::optional<std::string> name;
    std::optional<std::string> status;
    bool has_result = false;
    std::optional<std::string> result;
    std::optional<std::string> time;
    bool failures_not_array = false;
    std::optional<std::string> failure;  // of the failure object being read
    std::string message;
    std::string failure_error;
  };

  std::string SuiteWhere() const { return "testsuites[" + std::to_string(suite_index_) + "]"; }
  std::string CaseWhere() const {
    return SuiteWhere() + ".testsuite[" + std::to_string(case_index_) + "]";
  }
  static std::string NoString(const std::string& where, const char* key) {
    return where + ": no string \"" + key + "\"";
  }

  Role Parent() const { return stack_.empty() ? Role::kOther : stack_.back().role; }

  bool Fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  // A value that is not a container: `text` is set for a string.
  bool Scalar(const std::string* text) {
    if (stack_.empty()) return Fail("not an object");
    Frame& frame = stack_.back();
    switch (frame.role) {
      case Role::kSuites:
        return Fail("testsuites[" + std::to_string(frame.items++) + "]: not an object");
      case Role::kCases:
        case_index_ = frame.items++;
        if (suite_.case_error.empty()) suite_.case_error = CaseWhere() + ": not an object";
        return true;
      case Role::kFailures:
        if (case_.failure_error.empty()) {
          case_.failure_error =
              CaseWhere() + ".failures[" + std::to_string(frame.items) + "]: not an object";
        }
        ++frame.items;
        return true;
      case Role::kSuite:
        if (key_ == "name") suite_.name = text ? std::optional<std::string>(*text) : std::nullopt;
        if (key_ == "testsuite") suite_.has_cases = false;
        return true;
      case Role::kCase: {
        auto set = [&](std::optional<std::string>& field) {
          field = text ? std::optional<std::string>(*text) : std::nullopt;
        };
        if (key_ == "name") set(case_.name);
        if (key_ == "status") set(case_.status);
        if (key_ == "result") {
          case_.has_result = true;
          set(case_.result);
        }
        if (key_ == "time") set(case_.time);
        if (key_ == "failures") case_.failures_not_array = true;
        return true;
      }
      case Role::kFailure:
        if (key_ == "failure") {
          case_.failure = text ? std::optional<std::string>(*text) : std::nullopt;
        }
        return true;
      case Role::kTop:
        if (key_ == "testsuites") saw_suites_ = false;
        return true;
      case Role::kOther:
        return true;
    }
    return true;
  }

  bool Open(bool object) {
    Role role = Role::kOther;
    if (stack_.empty()) {
      if (!object) return Fail("not an object");
      role = Role::kTop;
    } else {
      Frame& parent = stack_.back();
      switch (parent.role) {
        case Role::kTop:
          if (key_ == "testsuites") {
            saw_suites_ = !object;
            if (!object) role = Role::kSuites;
          }
          break;
        case Role::kSuites:
          suite_index_ = parent.items++;
          if (!object) return Fail(SuiteWhere() + ": not an object");
          suite_ = SuiteFields{};
          role = Role::kSuite;
          break;
        case Role::kSuite:
          if (key_ == "name") suite_.name.reset();
          if (key_ == "testsuite") {
            suite_.has_cases = !object;
            if (!object) role = Role::kCases;
          }
          break;
        case Role::kCases:
          case_index_ = parent.items++;
          if (!object) {
            if (suite_.case_error.empty()) suite_.case_error = CaseWhere() + ": not an object";
          } else {
            case_ = CaseFields{};
            role = Role::kCase;
          }
          break;
        case Role::kCase:
          Scalar(nullptr);  // "name", "status", "result" or "time" as a container: not a string
          if (key_ == "failures") {
            if (object) {
              case_.failures_not_array = true;
            } else {
              case_.failures_not_array = false;
              case_.message.clear();
              case_.failure_error.clear();
              role = Role::kFailures;
            }
          }
          break;
        case Role::kFailures:
          if (!object) {
            if (case_.failure_error.empty()) {
              case_.failure_error =
                  CaseWhere() + ".failures[" + std::to_string(parent.items) + "]: not an object";
            }
            ++parent.items;
          } else {
            case_.failure.reset();
            role = Role::kFailure;
          }
          break;
        case Role::kFailure:
          if (key_ == "failure") case_.failure.reset();
          break;
        case Role::kOther:
          break;
      }
    }
    stack_.push_back({role});
    key_.clear();
    return true;
  }

  bool Close() {
    Frame frame = stack_.back();
    stack_.pop_back();
    key_.clear();
    switch (frame.role) {
      case Role::kTop:
        if (!saw_suites_) return Fail("top level: no array \"testsuites\"");
        return true;
      case Role::kSuite:
        return EndSuite();
      case Role::kCase:
        EndCase();
        return true;
      case Role::kFailure: {
        std::size_t index = stack_.back().items++;
        if (!case_.failure) {
          if (case_.failure_error.empty()) {
            case_.failure_error =
                NoString(CaseWhere() + ".failures[" + std::to_string(index) + "]", "failure");
          }
          return true;
        }
        if (!case_.message.empty()) case_.message += "\n\n";
        case_.message += *case_.failure;
        return true;
      }
      default:
        return true;
    }
  }

  // Checked in the order a reader of the document would: the suite's own fields, then its cases.
  bool EndSuite() {
    const std::string where = SuiteWhere();
    if (!suite_.name) return Fail(NoString(where, "name"));
    if (!suite_.has_cases) return Fail(where + ": no array \"testsuite\"");
    if (!suite_.case_error.empty()) return Fail(suite_.case_error);
    for (GtestCaseResult& result : suite_.results) {
      result.name = result.name.empty() ? *suite_.name : *suite_.name + "." + result.name;
      results_.push_back(std::move(result));
    }
    suite_.results.clear();
    return true;
  }

  // A case's result, or its error kept for its suite's end; a case that did not run adds none.
  void EndCase() {
    if (!suite_.case_error.empty()) return;
    std::string error = CaseError();
    if (!error.empty()) {
      suite_.case_error = std::move(error);
      return;
    }
    if (*case_.status == "NOTRUN" || case_.result == "SUPPRESSED") return;
    GtestCaseResult out;
    out.name = std::move(*case_.name);  // the suite's name is put before it at the suite's end
    if (case_.time) out.duration = ParseSeconds(*case_.time);
    out.message = std::move(case_.message);
    if (!out.message.empty()) {
      out.status = GtestCaseResult::Status::kFailed;
    } else if (case_.result == "SKIPPED") {
      out.status = GtestCaseResult::Status::kSkipped;
    }
    suite_.results.push_back(std::move(out));
  }

  std::string CaseError() const {
    const std::string where = CaseWhere();
    if (!case_.name) return NoString(where, "name");
    if (!case_.status) return NoString(where, "status");
    if (*case_.status == "NOTRUN") return {};
    if (*case_.status != "RUN") return where + ": unknown status \"" + *case_.status + "\"";
    // "result" arrived in gtest 1.10; older reports have only "status".
    if (case_.has_result) {
      if (!case_.result) return NoString(where, "result");
      const std::string& result = *case_.result;
      if (result != "COMPLETED" && result != "SKIPPED" && result != "SUPPRESSED") {
        return where + ": unknown result \"" + result + "\"";
      }
      if (result == "SUPPRESSED") return {};
    }
    if (case_.failures_not_array) return where + ": \"failures\" is not an array";
    return case_.failure_error;
  }

  std::vector<Frame> stack_;
  std::string key_;
  bool saw_suites_ = false;
  std::size_t suite_index_ = 0;
  std::size_t case_index_ = 0;
  SuiteFields suite_;
  CaseFields case_;
  std::vector<GtestCaseResult> results_;
  std::string error_;
};

std::string_view TrimNewlines(std::string_view text) {
  while (!text.empty() && (text.front() == '\n' || text.front() == '\r')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  return text;
}

// The message of GTEST_SKIP() as the console printed it:
//   [ RUN      ] Suite.Case
//   file:line: Skipped
//   <message>
//   [  SKIPPED ] Suite.Case (0 ms)
std::string SkipMessageFromConsole(std::string_view console, const std::string& name) {
  std::string run_line = "[ RUN      ] " + name + "\n";
  std::size_t run = console.rfind(run_line);
  if (run == console.npos) return {};
  std::size_t body = run + run_line.size();
  // Searching from the RUN line's own '\n' finds a SKIPPED line right after it too.
  std::string skipped_line = "\n[  SKIPPED ] " + name;
  std::size_t end = body - 1;
  for (;; ++end) {
    end = console.find(skipped_line, end);
    if (end == console.npos) return {};
    std::size_t after = end + skipped_line.size();  // " (0 ms)", or the end of the line
    if (after == console.size() || console[after] == ' ' || console[after] == '\n') break;
  }
  std::string_view block = console.substr(body, end + 1 - body);
  constexpr std::string_view kMarker = ": Skipped\n";
  std::size_t marker = block.rfind(kMarker);
  if (marker == block.npos) return {};
  return std::string(TrimNewlines(block.substr(marker + kMarker.size())));
}

}  // namespace

bool IsGtestBinary(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd || !IsElfRegularFile(fd.get())) return false;
  // The last LongestMark()-1 bytes of each chunk are carried into the next, so a mark split
  // across a chunk boundary is still seen whole.
  constexpr std::size_t kCarry = LongestMark() - 1;
  std::string buffer(kCarry + kGtestScanChunkBytes, '\0');
  std::size_t carried = 0;
  std::size_t total = 0;
  while (total < kGtestScanMaxBytes) {
    std::size_t want = std::min(kGtestScanChunkBytes, kGtestScanMaxBytes - total);
    ssize_t n = ReadSome(fd.get(), buffer.data() + carried, want);
    if (n <= 0) return false;
    total += static_cast<std::size_t>(n);
    std::size_t filled = carried + static_cast<std::size_t>(n);
    if (ContainsMark(std::string_view(buffer.data(), filled))) return true;
    carried = std::min(kCarry, filled);
    std::memmove(buffer.data(), buffer.data() + filled - carried, carried);
  }
  return false;
}

Result<std::vector<GtestCase>> ParseGtestList(std::string_view output) {
  std::vector<GtestCase> cases;
  std::optional<std::string> suite;  // the current suite line's name, without its '.'
  bool suite_has_cases = false;
  std::size_t suite_line_number = 0;
  std::string_view suite_line;
  std::optional<std::size_t> stray_line_number;  // the first non-listing line before any suite
  std::string_view stray_line;

  std::size_t line_number = 0;
  for (std::size_t pos = 0; pos < output.size();) {
    std::size_t newline = output.find('\n', pos);
    std::size_t end = newline == output.npos ? output.size() : newline;
    std::string_view line = output.substr(pos, end - pos);
    pos = end + 1;
    ++line_number;
    if (line.ends_with('\r')) line.remove_suffix(1);
    if (std::all_of(line.begin(), line.end(), IsBlank)) continue;

    std::optional<std::string_view> name = ListedName(line);
    if (IsBlank(line.front())) {
      if (!suite) return ListError(line_number, "a case line before any suite line", line);
      if (!name) return ListError(line_number, "not a case line", line);
      std::string_view case_name = *name;
      cases.push_back({*suite + "." + std::string(case_name),
                       IsDisabledName(*suite) || IsDisabledName(case_name)});
      suite_has_cases = true;
      continue;
    }
    if (name && name->size() > 1 && name->ends_with('.')) {
      if (suite && !suite_has_cases) {
        return ListError(suite_line_number, "a suite line without cases", suite_line);
      }
      suite = std::string(name->substr(0, name->size() - 1));
      suite_has_cases = false;
      suite_line_number = line_number;
      suite_line = line;
      continue;
    }
    if (suite) return ListError(line_number, "neither a suite nor a case line", line);
    // Before the listing: gtest_main's "Running main() from ..." or a custom main's banner.
    if (!stray_line_number && !line.starts_with("Running main() from ")) {
      stray_line_number = line_number;
      stray_line = line;
    }
  }
  if (suite && !suite_has_cases) {
    return ListError(suite_line_number, "a suite line without cases", suite_line);
  }
  if (!suite && stray_line_number) {
    return ListError(*stray_line_number, "not a test listing", stray_line);
  }
  return cases;
}

Result<std::vector<GtestCaseResult>> ParseGtestJson(std::string_view json,
                                                    std::string_view console_output) {
  ReportReader reader;
  try {
    std::string repaired;
    std::string_view text = AsValidUtf8(json, repaired);
    Json::sax_parse(text.begin(), text.end(), &reader);
  } catch (const std::exception& error) {
    return Error{std::string("reading a gtest JSON report: ") + error.what()};
  }
  Result<std::vector<GtestCaseResult>> results = reader.Take();
  if (results && !console_output.empty()) {
    for (GtestCaseResult& result : *results) {
      if (result.status == GtestCaseResult::Status::kSkipped && result.message.empty()) {
        result.message = SkipMessageFromConsole(console_output, result.name);
      }
    }
  }
  return results;
}

namespace {

// Reads gtest's JSON listing (--gtest_list_tests --gtest_output=json:FILE) event by event: only
// the suite and case names are kept, so a listing of a million cases costs their names, not a
// document tree.
class ListingReader : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool string(string_t& value) override {
    if (OnPath(3) && key_ == "name") suite_ = value;
    if (OnPath(5) && key_ == "name") case_ = value;
    return Value();
  }
  bool key(string_t& value) override {
    key_ = value;
    if (stack_.size() == 1 && value == "testsuites") saw_testsuites_ = true;
    return true;
  }
  bool start_object(std::size_t) override { return Open(Level::kObject); }
  bool start_array(std::size_t) override { return Open(Level::kArray); }
  bool end_object() override {
    if (OnPath(5)) {  // a case
      if (case_.empty()) return Shape("a case without a name");
      names_.push_back(case_);
      case_.clear();
    } else if (OnPath(3)) {  // a suite
      if (suite_.empty()) return Shape("a suite without a name");
      for (const std::string& name : names_) {
        cases_.push_back({suite_ + "." + name, IsDisabledName(suite_) || IsDisabledName(name)});
      }
      names_.clear();
      suite_.clear();
    }
    return Close();
  }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& error) override {
    error_ = "at byte " + std::to_string(position) + ": " + error.what();
    return false;
  }

  Result<std::vector<GtestCase>> Take() {
    if (!error_.empty()) return Error{"not a gtest JSON listing: " + error_};
    if (!saw_testsuites_) return Error{"not a gtest JSON listing: no \"testsuites\""};
    return std::move(cases_);
  }

 private:
  enum class Level { kObject, kArray };

  // Where names live: {"testsuites": [ {"name", "testsuite": [ {"name"} ]} ]}. Each open
  // container is on that path or not; only names on it are kept (a suite's at depth 3, a case's
  // at depth 5), anything else gtest may add is passed over.
  bool Open(Level level) {
    static constexpr Level kShape[] = {Level::kObject, Level::kArray, Level::kObject, Level::kArray,
                                       Level::kObject};
    const std::size_t depth = stack_.size();
    if (depth == 0 && level != Level::kObject) return Shape("not a JSON object");
    const bool on_path = (depth == 0 || stack_.back()) && depth < std::size(kShape) &&
                         kShape[depth] == level && (depth != 1 || key_ == "testsuites") &&
                         (depth != 3 || key_ == "testsuite");
    stack_.push_back(on_path);
    key_.clear();
    return true;
  }
  bool Close() {
    stack_.pop_back();
    key_.clear();
    return true;
  }
  bool Value() {
    key_.clear();
    return true;
  }
  bool Shape(const std::string& what) {
    error_ = what;
    return false;
  }

  bool OnPath(std::size_t depth) const { return stack_.size() == depth && stack_.back(); }

  std::vector<bool> stack_;  // per open container: on the path to a name
  std::string key_;
  std::string suite_;
  std::string case_;
  std::vector<std::string> names_;
  std::vector<GtestCase> cases_;
  bool saw_testsuites_ = false;
  std::string error_;
};

}  // namespace

Result<std::vector<GtestCase>> ParseGtestListJson(std::string_view json) {
  ListingReader reader;
  try {
    std::string repaired;
    std::string_view text = AsValidUtf8(json, repaired);
    Json::sax_parse(text.begin(), text.end(), &reader);
  } catch (const std::exception& error) {
    return Error{std::string("not a gtest JSON listing: ") + error.what()};
  }
  return reader.Take();
}

std::string GtestFilterFor(const std::vector<std::string>& cases) {
  std::string filter;
  for (const std::string& name : cases) {
    if (!filter.empty()) filter += ':';
    filter += name;
  }
  return filter;
}

}  // namespace testfarm::coordinator
